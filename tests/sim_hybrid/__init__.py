"""Tests of the Hybrid simulator's own behaviour: policies, webhooks, faults, control."""
