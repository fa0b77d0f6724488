"""The container isolation tier, where Gradescope runs the grader: a Docker-like container (tests/docker_like.py:
root, Docker's fourteen capabilities, new user namespaces refused, /sys read-only) in which bubblewrap cannot
isolate. The built Gradescope bundle grades there in the container tier it reports; the attack suite, graded there
as one class beside an honest submission, stays contained; a minimum tier above what the machine allows refuses
to grade instead of posting a score."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

import docker_like
import factory
from autograder.sandbox import tiers

UNAVAILABLE = docker_like.available()
in_container = pytest.mark.skipif(bool(UNAVAILABLE), reason=UNAVAILABLE or "")
INSIDE = Path("/autograder")
FIRST_UID = 63000  # uids are the host's in a Docker-like container: a block no other test uses


# ---------------------------------------------------------------------------------------------
# Choosing a tier (no container needed)
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def machine(monkeypatch):
    """A machine whose tiers' probes say what the test sets."""
    said = {"namespaces": "", "container": ""}
    monkeypatch.setattr(tiers, "namespaces_unavailable", lambda: said["namespaces"])
    monkeypatch.setattr(tiers, "container_unavailable", lambda: said["container"])
    tiers._select.cache_clear()
    yield said
    tiers._select.cache_clear()


def choose(**settings):
    from autograder.settings import load_settings
    tiers._select.cache_clear()  # probed once per process: the test's machine changes between calls
    return tiers.select(load_settings(settings, environ={}))


def test_the_strongest_tier_the_machine_allows_is_chosen(machine):
    assert choose().name == "namespaces"
    machine["namespaces"] = "bubblewrap cannot create namespaces here: Operation not permitted"
    tier = choose()
    assert tier.name == "container" and "Operation not permitted" in tier.why_not_stronger
    assert "container" in tier.line() and "Operation not permitted" in tier.line()


def test_a_tier_below_the_minimum_refuses_to_grade_and_says_why(machine):
    machine["namespaces"] = "bubblewrap cannot create namespaces here"
    with pytest.raises(tiers.IsolationRefused, match="minimum_isolation is namespaces"):
        choose(minimum_isolation="namespaces")
    with pytest.raises(tiers.IsolationRefused, match="minimum_isolation is container"):
        choose(unsafe_no_sandbox=True)
    assert choose(unsafe_no_sandbox=True, minimum_isolation="none").name == "none"
    machine["container"] = "the grader runs as uid 1000"
    with pytest.raises(tiers.IsolationRefused, match="(?s)No isolation tier works here.*uid 1000"):
        choose()


def test_a_tier_asked_for_is_that_tier_or_a_refusal(machine):
    assert choose(isolation="container").name == "container"
    machine["container"] = "prlimit is not installed"
    with pytest.raises(tiers.IsolationRefused, match="prlimit"):
        choose(isolation="container")
    from autograder.settings import SettingsError, load_settings
    with pytest.raises(SettingsError, match="isolation"):
        load_settings({"isolation": "chroot"}, environ={})


# ---------------------------------------------------------------------------------------------
# The imitation is what it claims
# ---------------------------------------------------------------------------------------------

@in_container
def test_the_container_refuses_namespaces_like_docker():
    script = ("import os, subprocess; print(os.getuid()); "
              "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0]); "
              "print(subprocess.run(['unshare', '-n', 'true']).returncode); "
              "print(subprocess.run(['bwrap', '--ro-bind', '/', '/', '--unshare-pid', 'true']).returncode); "
              "os.setresuid(63001, 63001, 63001); print(os.getuid())")
    result = docker_like.run([sys.executable, "-c", script], binds={})
    uid, capabilities, unshare, bwrap, switched = result.stdout.split()
    assert (uid, capabilities, switched) == ("0", "00000000a80425fb", "63001")  # Docker's default capability set
    assert unshare != "0" and bwrap != "0", result.stderr


# ---------------------------------------------------------------------------------------------
# The Gradescope bundle in the container
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The built bundle unpacked where Gradescope's setup.sh finds it (/autograder/source)."""
    from autograder.gradescope import build_bundle
    root = tmp_path_factory.mktemp("gradescope-container") / "autograder"
    archive = build_bundle(root.parent / "autograder.zip", version="v1")
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(root / "source")
    for name in ("run_autograder", "setup.sh"):
        os.chmod(root / "source" / name, 0o755)
    return root


def run_autograder(root: Path, submission: Path, **env):
    for name in ("submission", "results"):
        shutil.rmtree(root / name, ignore_errors=True)
    shutil.copytree(submission, root / "submission")
    result = docker_like.run([str(INSIDE / "source" / "run_autograder")], binds={str(INSIDE): root},
                             env={"AUTOGRADER_PYTHON": sys.executable, "AUTOGRADER_FIRST_UID": str(FIRST_UID), **env})
    path = root / "results" / "results.json"
    assert path.is_file(), result.stderr[-3000:]
    return result, json.loads(path.read_text())


def by_function(results: dict) -> dict[str, float]:
    totals: dict[str, float] = {}
    for test in results["tests"]:
        totals[test["tags"][0]] = round(totals.get(test["tags"][0], 0) + test["score"], 2)
    return totals


@pytest.mark.slow
@in_container
def test_the_bundle_grades_the_solution_100_in_the_container_tier(bundle):
    result, results = run_autograder(bundle, factory.V1.examples_dir / "submissions" / "solution")
    assert result.returncode == 0, result.stderr[-3000:]
    assert results["score"] == 100, [t["output"][:200] for t in results["tests"] if t["status"] != "passed"]
    assert results["extra_data"]["isolation"] == "container"


@pytest.mark.slow
@in_container
def test_the_bundle_grades_a_broken_submission_exactly_in_the_container_tier(bundle, materialized):
    result, results = run_autograder(bundle, materialized["last_batch_dropped"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert by_function(results)["minibatches"] == pytest.approx(9.8)
    assert results["score"] == pytest.approx(95.8)
    assert results["extra_data"]["isolation"] == "container"


@pytest.mark.slow
@in_container
def test_below_the_minimum_tier_the_bundle_posts_no_score(bundle):
    """The instructor asked for namespaces; Gradescope's container allows the container tier only: no score, the
    reason visible to the student, a marker for the staff, and a failed run."""
    result, results = run_autograder(bundle, factory.V1.examples_dir / "submissions" / "solution",
                                     AUTOGRADER_MINIMUM_ISOLATION="namespaces")
    assert result.returncode == 1
    assert "score" not in results and results["tests"] == []
    assert results["visibility"] == "visible" and "No grade was computed" in results["output"]
    assert "minimum_isolation is namespaces" in results["output"]
    assert results["extra_data"]["not_graded"] is True and "namespaces" in results["extra_data"]["grader_error"]
    assert "has been told" not in results["output"]  # nobody is: the staff find it by the marker (README)


# ---------------------------------------------------------------------------------------------
# The attack suite as one class in the container tier
# ---------------------------------------------------------------------------------------------

ATTACKS = factory.catalogue("attacks")
HONEST = "honest_solution"
DRIVER = textwrap.dedent("""
    import json, os, subprocess, sys, time
    FIRST, LAST = int(sys.argv[1]), int(sys.argv[1]) + 64
    grade = subprocess.run([sys.executable, "-m", "autograder", "grade", "/autograder/class", "--out", "/autograder/out",
                            "--version", "v1", "--jobs", "2", "--quiet", "--probe-timeout-s", "20",
                            "--retrain-timeout-s", "120"], cwd="/autograder/source", capture_output=True, text=True)
    time.sleep(1.0)  # a straggler shows itself
    processes, files = [], []
    for entry in os.listdir("/proc"):
        try:
            uid = int(open(f"/proc/{entry}/status").read().split("Uid:")[1].split()[0])
        except (OSError, IndexError, ValueError):
            continue
        if FIRST <= uid < LAST:
            processes.append(open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\\0", b" ").decode(errors="replace"))
    for top in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock"):
        for folder, dirs, names in os.walk(top):
            for name in dirs + names:
                path = os.path.join(folder, name)
                try:
                    if FIRST <= os.lstat(path).st_uid < LAST:
                        files.append(path)
                except OSError:
                    pass
    ipc = []
    for kind in ("shm", "msg", "sem"):
        lines = open(f"/proc/sysvipc/{kind}").read().splitlines()
        column = lines[0].split().index("uid")
        ipc += [line for line in lines[1:] if FIRST <= int(line.split()[column]) < LAST]
    json.dump({"returncode": grade.returncode, "stderr": grade.stderr[-5000:], "processes": processes,
               "files": files, "ipc": ipc}, open("/autograder/leftovers.json", "w"))
""")


@pytest.fixture(scope="module")
def container_class(bundle, materialized, tmp_path_factory):
    root = tmp_path_factory.mktemp("container-class") / "autograder"
    shutil.copytree(bundle / "source", root / "source")
    (root / "class").mkdir()
    for attack in ATTACKS:
        source = materialized[attack.name]
        shutil.copytree(source, root / "class" / attack.name)  # every attack is a folder
    honest = root / "class" / HONEST
    honest.mkdir()
    (honest / "hello_mnist.py").write_text(factory.student_source())
    shutil.copy(factory.EXAMPLE_MODEL, honest / "model.keras")
    (root / "driver.py").write_text(DRIVER)
    from test_attacks import Listener
    listener = Listener()  # the container shares the host's network, as Gradescope's containers have one
    try:
        result = docker_like.run([sys.executable, str(INSIDE / "driver.py"), str(FIRST_UID)], binds={str(INSIDE): root},
                                 env={"AUTOGRADER_FIRST_UID": str(FIRST_UID), "TF_CPP_MIN_LOG_LEVEL": "3",
                                      "MNIST_DATA_DIR": str(INSIDE / "source" / "data" / "v1" / "mnist")}, timeout=1800)
        time.sleep(0.5)
    finally:
        listener.close()
    assert (root / "leftovers.json").is_file(), result.stderr[-3000:]
    leftovers = json.loads((root / "leftovers.json").read_text())
    leftovers.update(listener_port=listener.port, heard=listener.heard)
    return root, leftovers


def class_results(root: Path, name: str) -> dict:
    return json.loads((root / "out" / "submissions" / name / "results.json").read_text())


@pytest.mark.slow
@in_container
def test_the_container_class_ran_in_the_container_tier(container_class):
    root, leftovers = container_class
    assert leftovers["returncode"] == 0, leftovers["stderr"]
    assert {class_results(root, HONEST)["extra_data"]["isolation"]} == {"container"}


@pytest.mark.slow
@in_container
def test_the_honest_neighbour_of_the_attacks_scores_100(container_class):
    root, _ = container_class
    results = class_results(root, HONEST)
    assert results["score"] == 100, [t["output"][:200] for t in results["tests"] if t["status"] != "passed"]


@pytest.mark.parametrize("attack", [pytest.param(a, marks=[pytest.mark.slow, in_container], id=a.name) for a in ATTACKS])
def test_each_attack_costs_exactly_its_points_in_the_container_tier(container_class, attack):
    from autograder.rubric import load_rubric
    root, _ = container_class
    results = class_results(root, attack.name)
    full = load_rubric(factory.V1).points_by_function()
    actual = by_function(results)
    expected = {name: attack.scores.get(name, points) for name, points in full.items()}
    wrong = {name: (actual.get(name), expected[name]) for name in full if abs(actual.get(name, 0) - expected[name]) > 0.01}
    details = {t["name"]: t["output"][:300] for t in results["tests"] if t["status"] != "passed"}
    assert not wrong, f"{attack.description}: (actual, expected) {wrong}; failed: {details}"
    flags = results["extra_data"]["flags"]
    for flag in attack.required_flags:
        assert any(f == flag or f.startswith(flag + ":") for f in flags), (flag, flags)
    assert results["extra_data"]["isolation"] == "container"


@pytest.mark.slow
@in_container
def test_nothing_of_the_student_uids_outlives_the_class(container_class):
    """No process, no file in a world-writable folder, no System V IPC object of a sandbox uid is left."""
    _, leftovers = container_class
    assert leftovers["processes"] == [] and leftovers["files"] == [] and leftovers["ipc"] == [], leftovers


@pytest.mark.slow
@in_container
def test_no_attack_reaches_the_network_from_the_container_tier(container_class):
    """The container has the host's network (no namespace of its own); the student's process may make AF_UNIX
    sockets only, so the network attack's TCP, UDP and DNS attempts reach nothing the host listens on."""
    _, leftovers = container_class
    assert leftovers["listener_port"] is not None, "no port was free for the listener: the check proves nothing"
    assert leftovers["heard"] == [], leftovers["heard"]


@pytest.mark.slow
@in_container
def test_no_grader_secret_reaches_the_attacks_feedback(container_class):
    from test_attacks import GRADER_SECRETS, _student_visible_text
    root, _ = container_class
    leaked = {attack.name: [s for s in GRADER_SECRETS if s in _student_visible_text(root / "out" / "submissions" / attack.name)]
              for attack in ATTACKS}
    assert not any(leaked.values()), leaked
