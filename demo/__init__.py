"""The local demo: three client companies wired to the sandboxes (``manage.py demo``) and the one-command
launcher (``manage.py run``). Not part of the product's flows."""
