"""Faithful local emulations of Fortnox, Dinero and Nets Easy (never friendlier than the documented
services). Product code — the demo and the tests run on them — but not the product: kept apart from
the connectors they emulate."""
