"""Config set with ``--secret`` stays secret wherever it flows: resource inputs, component and stack outputs.

``program.config`` finds the secret values (:class:`krc.config.secrecy.Taint`: every value of a top-level key
Pulumi reports as secret, and what derives from it). :func:`protect`, called by ``__main__`` before the first
resource, registers a stack transformation that makes each resource input holding one of them a Pulumi secret
(encrypted in the state), makes the outputs a provider computes from such inputs secret too, and wraps each
component's ``register_outputs`` the same way (component outputs are saved in the state). :func:`protect_outputs`,
called last, does it for the stack outputs. Credentials need none of this: ``program.config`` hands them over as
secrets already.

Why a transformation rather than a secret per value at each use: the settings are plain values that reach
scripts, kind's config, hosts.toml and Helm values through many renderers; checking what actually reaches each
resource catches every path, including ones added later (tests/test_secret_flow.py runs every key).

Log lines and error messages need no help: the engine replaces every decrypted secret config value in the
program's diagnostics with ``[secret]`` (pulumi v3.259.0 pkg/engine/events.go:420-439, ``AddGlobalSecretFilter``,
applied to each diagnostic at :779-780).
"""

from __future__ import annotations

from typing import Any

import pulumi

from krc.config.secrecy import Taint

#: Outputs a provider computes from its inputs under another name, made secret with a tainted resource. Outputs
#: named like a secret input are secret already (pulumi pkg/resource/plugin/provider_plugin.go:918, annotateSecrets).
DERIVED_OUTPUTS = {
    "command:local:Command": ["stdout", "stderr"],
    "docker:index/container:Container": ["network_data"],
    "kubernetes:helm.sh/v3:Release": ["status"],
}


#: Inputs a component computes from many settings in a way no value check can see through (a digest of the
#: cluster's inputs: KindCluster.identity): secret whenever any value set with --secret exists.
DIGEST_INPUTS = {
    "pulumi:providers:kubernetes": ["cluster_identifier"],
}


def secret_if_touched(value: Any, taint: Taint) -> Any:
    """``value`` as a secret Output when it holds a secret value (known now, or once its Outputs resolve)."""
    if value is None:
        return value
    if not _has_output(value):
        return pulumi.Output.secret(value) if taint.touches(value) else value
    return pulumi.Output.from_input(value).apply(lambda v: pulumi.Output.secret(v) if taint.touches(v) else v)


def protect(taint: Taint) -> None:
    """Make every later resource's inputs and outputs that hold a secret value secrets (nothing when none is)."""
    if not taint:
        return

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
        props = dict(args.props or {})
        touched = False
        for key in DIGEST_INPUTS.get(args.type_, []):
            if props.get(key) is not None:
                props[key] = pulumi.Output.secret(props[key])
        for key, value in props.items():
            if key in DIGEST_INPUTS.get(args.type_, []):
                continue
            if _has_output(value) or taint.touches(value):
                touched = touched or not _has_output(value)
                props[key] = secret_if_touched(value, taint)
        opts = args.opts
        # Conservatively also when an input is only known later (an Output): the outputs then hide nothing.
        touched = touched or any(_has_output(value) for value in props.values())
        if touched and args.type_ in DERIVED_OUTPUTS:
            opts = pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=DERIVED_OUTPUTS[args.type_])
            )
        if isinstance(args.resource, pulumi.ComponentResource) and not isinstance(args.resource, pulumi.CustomResource):
            _protect_component_outputs(args.resource, taint)
        return pulumi.ResourceTransformationResult(props, opts)

    pulumi.runtime.register_stack_transformation(transformation)


def protect_outputs(taint: Taint) -> None:
    """Make each stack output (``pulumi.export``) that holds a secret value a secret. Call after the last export."""
    if not taint:
        return
    stack = pulumi.runtime.get_root_resource()
    outputs = getattr(stack, "outputs", None)
    if isinstance(outputs, dict):
        for name in list(outputs):
            outputs[name] = secret_if_touched(outputs[name], taint)


def _protect_component_outputs(component: pulumi.ComponentResource, taint: Taint) -> None:
    register = component.register_outputs

    def register_outputs(outputs: Any) -> None:
        if isinstance(outputs, dict):
            outputs = {name: secret_if_touched(value, taint) for name, value in outputs.items()}
        register(outputs)

    component.register_outputs = register_outputs  # type: ignore[method-assign]


def _has_output(value: Any) -> bool:
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, (pulumi.Output, pulumi.Resource)) or hasattr(item, "__await__"):
            return True
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            todo.extend(vars(item).values())
    return False
