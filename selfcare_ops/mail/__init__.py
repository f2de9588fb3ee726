"""Outbound mail: templates, rendering, the outbox and its transports."""
