"""deploy/k8s/ validated offline against the Kubernetes JSON schemas (kubernetes-validate ships them),
and held to the service: probes on its health routes, every ANKANG_* setting configured, names that match."""

from __future__ import annotations

import pytest
import yaml

from runtime.paths import PROJECT_ROOT
from serving.settings import ServingSettings

K8S_DIR = PROJECT_ROOT / "deploy" / "k8s"
NO_VALIDATOR = "kubernetes-validate is not installed (pip install 'ankang[dev]')"
KUBERNETES_VERSION = "1.33.0"  # the oldest Kubernetes release still supported upstream when this was written
SECRET_SETTINGS = {
    "ANKANG_DATABASE_URL",
    "ANKANG_API_KEYS",
    "ANKANG_SESSION_SECRET",
    "ANKANG_PSEUDONYM_KEY",
    "ANKANG_ORDERS_WEBHOOK_SECRET",
}


def service_settings() -> set[str]:
    """Every variable the service reads (pydantic-settings fields, serving/settings.py)."""
    return set(ServingSettings.variables())


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    documents = [doc for path in sorted(K8S_DIR.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return {doc["kind"]: doc for doc in documents}


def test_every_manifest_is_valid_against_the_kubernetes_schemas(manifests):
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason=NO_VALIDATOR)
    assert set(manifests) == {
        "ConfigMap",
        "Secret",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
    }
    for document in manifests.values():
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_fails_on_a_misspelt_field(manifests):
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason=NO_VALIDATOR)
    broken = yaml.safe_load(yaml.safe_dump(manifests["Deployment"]))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_setting_of_the_service_is_in_the_configmap_or_the_secret(manifests):
    config, secret = manifests["ConfigMap"]["data"], manifests["Secret"]["stringData"]
    assert set(secret) == SECRET_SETTINGS
    assert set(config) | set(secret) == service_settings()
    ServingSettings.from_env({**config, **{name: "x" * 32 for name in secret}})  # the values parse


def test_probes_resources_and_names_hold_together(manifests):
    deployment, pod_labels = manifests["Deployment"], manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    assert manifests["Service"]["spec"]["selector"].items() <= pod_labels.items()
    assert manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert manifests["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    job = manifests["Job"]["spec"]["template"]["spec"]["containers"][0]
    assert job["image"] == container["image"] and job["envFrom"] == container["envFrom"]
    assert "serving.db import create_engine, migrate" in job["command"][-1]


def test_the_migration_jobs_command_migrates_a_database(manifests, tmp_path, monkeypatch):
    import sqlalchemy as sa

    monkeypatch.setenv("ANKANG_DATABASE_URL", f"sqlite:///{tmp_path / 'review.db'}")
    exec(manifests["Job"]["spec"]["template"]["spec"]["containers"][0]["command"][-1], {})
    tables = sa.inspect(sa.create_engine(f"sqlite:///{tmp_path / 'review.db'}")).get_table_names()
    assert {"review_cases", "review_decisions", "review_alembic_version"} <= set(tables)
