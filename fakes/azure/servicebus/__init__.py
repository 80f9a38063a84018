"""Fake Azure Service Bus: the REST runtime API of one namespace (the lab's monitoring and
diagnostics channel). See `models.py` for what is and is not emulated, `auth.py` for SAS and
bearer tokens, docs/servicebus.md for examples."""
