"""The desired state: spec files -> validated, defaults-resolved `Spec` and `BundleSpec`
values.

Never imports boto3: validation works offline and fast.
"""

from reconciler.specs.checks import duplicate_problems, plan_time_problems
from reconciler.specs.load import SpecReport, SpecSet, check_specs, load_specs
from reconciler.specs.models import BundleSpec, Spec, json_schema

__all__ = [
    "BundleSpec",
    "Spec",
    "SpecReport",
    "SpecSet",
    "check_specs",
    "duplicate_problems",
    "json_schema",
    "load_specs",
    "plan_time_problems",
]
