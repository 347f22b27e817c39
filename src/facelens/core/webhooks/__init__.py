"""Webhook signing (Standard Webhooks)."""
