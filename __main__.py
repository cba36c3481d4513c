"""modelyard: `pulumi up` enters here. Settings are read and validated, then the platform is composed."""

from components.program import run

run(deploying=True)  # placeholders the offline plan accepts are refused here
