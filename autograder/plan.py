"""What the sandbox runs for one submission: the version's probes, in the rubric's order, with their limits.

The probes are declared in the version's grader files (``@probe`` in ``solutions/<version>/grading/test_*.py``,
beside the tests that read their records), so a check and the evidence it rests on are written once, in
one file; this module only collects them.
"""

from __future__ import annotations

from . import grading
from .assignment import Assignment
from .rubric import Rubric
from .sandbox.runner import ProbeSpec
from .settings import Settings


def declarations(assignment: Assignment) -> list[grading.ProbeDeclaration]:
    """Every probe of ``assignment``'s grader files, in the order they run: by graded function (the rubric's
    order), then as declared."""
    for path in sorted(assignment.grading_dir.glob("test_*.py")):
        assignment.grading_module(path.stem)
    prefix = assignment.grading_package + "."
    found = [d for d in grading.PROBES.values() if d.reference.startswith(prefix)]
    order = {name: index for index, name in enumerate(assignment.function_names)}
    return sorted(found, key=lambda d: (order.get(d.function, len(order)), d.sequence))


def grader_modules(assignment: Assignment) -> list[str]:
    """The grader modules the sandbox's recorder imports (their probes run there)."""
    return [f"{assignment.grading_package}.{path.stem}" for path in sorted(assignment.grading_dir.glob("test_*.py"))]


def probes(assignment: Assignment, settings: Settings, rubric: Rubric, *, has_model_file: bool,
           has_notebook: bool = False) -> list[ProbeSpec]:
    """The probe list for one submission of ``assignment``, in the order they run.

    All of a submission's probes share one recorder and one student process (``harness/main.py``: the
    supervisor still kills leftovers and applies each probe's own time limit between them), unless
    ``process_per_function`` asks for a pair per probe.
    """
    shared = None if settings.process_per_function else "shared"
    specs = []
    for declaration in declarations(assignment):
        if (declaration.only_with_model and not has_model_file) or (declaration.only_with_notebook and not has_notebook):
            continue
        params = declaration.params(assignment, rubric) if callable(declaration.params) else dict(declaration.params or {})
        limit = settings.retrain_timeout_s if declaration.timeout == "retrain" else settings.probe_timeout_s
        specs.append(ProbeSpec(declaration.name, limit, params, group=shared, probe=declaration.reference,
                               parallel=declaration.parallel, needs_module=declaration.needs_module))
    return specs
