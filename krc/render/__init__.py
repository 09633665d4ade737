"""Renderers: kind config, hosts.toml, registry settings and entrypoint, Helm values, image refs, warm-up plan."""
