"""kind-registry-cache: a kind cluster whose image pulls go through local pull-through caches."""
