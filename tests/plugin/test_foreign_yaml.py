"""Installed, vfio-hil is in every pytest run: other projects' YAML is not its business.

An unrelated project with CI files (or a ``scenarios/`` directory of its
own) and one trivial test must run exactly as with ``-p no:vfio_hil``.  Only
a file that carries the marker ``vfio-hil: scenario/1`` is a scenario.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TRIVIAL = "def test_trivial():\n    assert True\n"
ARGS = ("-p", "no:cacheprovider")

# Real-world shapes, each with a top-level ``steps:`` key.
CLOUDBUILD = """\
steps:
  - name: gcr.io/cloud-builders/docker
    args: [build, -t, gcr.io/$PROJECT_ID/app, .]
images: [gcr.io/$PROJECT_ID/app]
"""
AZURE = """\
trigger: [main]
pool: {vmImage: ubuntu-latest}
steps:
  - script: make test
    displayName: Run tests
"""
# Someone else's scenarios: not a vfio-hil scenario, and not even valid for one.
OWN_SCENARIO = """\
name: checkout flow
steps:
  - visit: /cart
  - click: "#pay"
"""
TEMPLATE = "steps:\n  {{- range .Values.steps }}\n  - {{ . }}\n  {{- end }}\n"  # not YAML at all
# A GitLab CI file whose job is named vfio-hil: the key, holding a mapping.
GITLAB = "stages: [test]\nvfio-hil:\n  stage: test\n  script: [pytest]\n"
# A multi-document file whose later document has a key vfio-hil.
MULTI_DOC = "kind: Deployment\nsteps: [a]\n---\nnote: >\n  see\nvfio-hil:\n  ignore\n"

FOREIGN = {
    "cloudbuild": {"cloudbuild.yaml": CLOUDBUILD},
    "azure_pipelines": {"azure-pipelines.yml": AZURE},
    "own_scenarios_dir": {"scenarios/foo.yaml": OWN_SCENARIO, "scenarios/tpl.yaml": TEMPLATE},
    "gitlab_job_named_vfio_hil": {
        ".gitlab-ci.yml": GITLAB,
        "ci/gitlab-ci.yml": GITLAB,
        "ci/flow.yml": "vfio-hil: {stage: test, script: [pytest]}\n",
    },
    "multi_document": {"deploy.yaml": MULTI_DOC},
    "all_together": {
        "cloudbuild.yaml": CLOUDBUILD,
        "azure-pipelines.yml": AZURE,
        "scenarios/foo.yaml": OWN_SCENARIO,
        "ci/scenarios/tpl.yml": TEMPLATE,
    },
}


def _project(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    pytester.makepyfile(test_trivial=TRIVIAL)
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _run(pytester: pytest.Pytester, *extra: str) -> tuple[int, dict[str, int]]:
    result = pytester.runpytest_subprocess(*ARGS, *extra, timeout=120)
    return result.ret, result.parseoutcomes()


@pytest.mark.parametrize("layout", FOREIGN)
def test_foreign_yaml_runs_as_without_the_plugin(pytester: pytest.Pytester, layout: str) -> None:
    _project(pytester, FOREIGN[layout])
    with_plugin = _run(pytester)
    without = _run(pytester, "-p", "no:vfio_hil")
    assert with_plugin == without
    assert with_plugin == (0, {"passed": 1})


def test_the_plugin_is_active_here(pytester: pytest.Pytester) -> None:
    """The control: a marked file among the foreign ones is collected, wherever it lies."""
    _project(pytester, FOREIGN["all_together"])
    (pytester.path / "checks").mkdir()
    (pytester.path / "checks" / "reset.yml").write_text("vfio-hil: scenario/1\nsteps:\n  - reset\n")
    result = pytester.runpytest_subprocess(*ARGS, "--collect-only", "-q", timeout=120)
    collected = [line for line in result.stdout.lines if "::" in line]
    assert len(collected) == 3, result.stdout.str()  # the trivial test, the scenario on 2 sims
    assert sum(line.startswith("checks/reset.yml::") for line in collected) == 2


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("vfio-hil: scenario\nsteps:\n  - reset\n", 1, id="no_format_version"),
        # Typos of the marker's value are errors, never silently skipped files.
        pytest.param("vfio-hil: scenarios/1\nsteps:\n  - reset\n", 1, id="typo_scenarios"),
        pytest.param("vfio-hil: Scenario/1\nsteps:\n  - reset\n", 1, id="typo_capital"),
        pytest.param("vfio-hil: 1\nsteps:\n  - reset\n", 1, id="bare_version"),
        pytest.param(
            "# ours\nvfio-hil: scenario/1\nsteps:\n  - reset\n  - resett\n", 5, id="bad_step"
        ),
        pytest.param('"vfio-hil": scenario/1\nsteps: [reset]\nname: [x]\n', 3, id="quoted_key"),
    ],
)
def test_a_marked_but_malformed_file_is_a_collection_error_at_its_line(
    pytester: pytest.Pytester, text: str, line: int
) -> None:
    _project(pytester, {"cloudbuild.yaml": CLOUDBUILD, "scenarios/mine.yaml": text})
    result = pytester.runpytest_subprocess(*ARGS, timeout=120)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert result.parseoutcomes() == {"errors": 1}
    result.stdout.fnmatch_lines(
        ["*ERROR collecting scenarios/mine.yaml*", f"scenarios/mine.yaml:{line}: *"]
    )
    assert "Traceback" not in result.stdout.str()


def test_the_shipped_scenarios_carry_the_marker() -> None:
    shipped = sorted((Path(__file__).parents[2] / "scenarios").glob("*.y*ml"))
    assert shipped
    assert [p.name for p in shipped if not p.read_text().startswith("vfio-hil: scenario/1\n")] == []
