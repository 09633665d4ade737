"""Pulumi glue that is not a component: reading the stack configuration and the read-only preflight invokes."""
