"""Kinds of resource: one module per kind, holding the calls only that kind needs.

A kind module knows its resource's AWS calls and their quirks: how it is created (and how
a lost reply is settled), how its tags are changed, how it is deleted, each after the
reads that make the call safe. It returns each item's result (`reconciler.results`) and
never prints, loops over a plan, or decides an exit code: the executor (`apply.py`) owns
the order of work, the regions, interruption and reporting.

Today there is one kind, `image` (WorkSpaces images). Copies, shares and bundles will
each be a module here beside it, called by the executor the same way.
"""
