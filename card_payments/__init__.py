"""Nets Easy card payments and payouts booked into Fortnox: settings and activation, sync, booking
rules, payout booking and reconciliation, problem reports."""
