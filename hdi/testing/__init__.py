"""Test doubles shipped with hdi: a local Databento-compatible HTTPS gateway (``hdi.testing.gateway``).

Modules: ``market`` (instruments, calendars), ``symbology`` (resolution), ``prices`` and ``synth``
(deterministic records), ``dbnout`` (DBN encoding), ``api`` (endpoints), ``faults`` (fault
injection), ``wire`` (HTTP helpers), ``gateway`` (the server and its command line).
"""
