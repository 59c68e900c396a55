"""docs/hybrid-api.md lists every contract case; this keeps the list generated and current.

Run ``python tests/contract/test_docs.py`` to rewrite the list after changing a contract test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent.parent / "docs" / "hybrid-api.md"
START, END = "<!-- contract-cases:start -->", "<!-- contract-cases:end -->"


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip())


def render_cases() -> str:
    """Markdown: per test module its title, then each case's name and what it requires."""
    out: list[str] = []
    for path in sorted(HERE.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_text())
        title = _one_line((ast.get_docstring(tree) or path.stem).split("\n\n")[0])
        out.append(f"\n### {title} (`{path.name}`)\n")
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"
            ):
                doc = ast.get_docstring(node)
                assert doc, f"{path.name}::{node.name} needs a docstring saying what is required"
                only = any(
                    isinstance(d, ast.Attribute) and d.attr == "simulator_only"
                    for d in node.decorator_list
                )
                tag = " *(simulator only)*" if only else ""
                out.append(f"- `{node.name}`{tag}: {_one_line(doc)}")
    return "\n".join(out).strip()


def _current_block() -> str:
    text = DOC.read_text()
    return text[text.index(START) + len(START) : text.index(END)].strip()


def test_api_doc_lists_every_contract_case_as_the_tests_say() -> None:
    """docs/hybrid-api.md's case list is exactly what the contract tests document."""
    assert _current_block() == render_cases(), "run: python tests/contract/test_docs.py"


if __name__ == "__main__":
    text = DOC.read_text()
    head, tail = text.split(START)[0], text.split(END)[1]
    DOC.write_text(f"{head}{START}\n{render_cases()}\n{END}{tail}")
    print(f"rewrote the contract cases in {DOC}")
