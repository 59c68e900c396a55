"""Local simulators of Microsoft Graph and of the Hybrid (OfficeRnD-compatible) booking API.

They serve the demo, the tests and the benchmarks, and let an operator try a configuration before
pointing roomd at a real tenant. They share no code with roomd's clients or sync engine: two
independent implementations of the same documented behaviour catch each other's mistakes.
"""
