"""Pure, Pulumi-free logic of kind-registry-cache (nothing here imports pulumi)."""
