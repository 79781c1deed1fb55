"""Plumbing shared by Turnout's services.

Only transport-level concerns live here (the CloudEvents envelope, event
contracts, MongoDB and Kafka helpers, the outbox relay, the consumer loop,
web operations endpoints and token checks). Domain rules stay inside each
service.
"""
