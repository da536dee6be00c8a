"""Packaging for LitePipeline: one package, four console scripts."""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
# read, not import: the build runs before the package's dependencies are installed
with open(os.path.join(HERE, "litepipeline", "version.py"), encoding="utf-8") as fp:
    __version__ = re.search(r'__version__ = "([^"]+)"', fp.read()).group(1)

with open(os.path.join(HERE, "README.md"), encoding="utf-8") as fp:
    README = fp.read()

setup(
    name="litepipeline",
    version=__version__,
    description="A distributed pipeline system: packaged Python jobs as DAGs on a few machines",
    long_description=README,
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["litepipeline", "litepipeline.*"]),
    package_data={"litepipeline.manager.store": ["alembic.ini", "sqlite_schema.sql", "migrations/*.py",
                                                 "migrations/versions/*.py"],
                  # the web interface's pages: shipped in the package, no build step
                  "litepipeline.manager.ui": ["templates/*.html", "static/*.js", "static/*.css", "static/*.svg",
                                              "static/pages/*.js"]},
    install_requires=[
        "tornado>=6.2",
        "PyYAML>=6.0",
        "requests>=2.28",
        # the CLI's streamed multipart uploads (a maintained encoder rather than our own)
        "requests-toolbelt>=1.0",
        "SQLAlchemy>=2.0",
        "alembic>=1.12",
        # streaming multipart parsing of application uploads (never held whole in memory)
        "streaming-form-data>=1.13",
        # schedules' cron expressions; fires a time of a repeated DST hour once and one in a
        # skipped hour right after the gap, as cron does (croniter fires the repeated one twice)
        "cronsim>=2.6",
        # shell completion of the CLI's operations and options (`litepipeline completion bash`)
        "argcomplete>=3.0",
        # log_format: json (one JSON object per log line, for log collectors)
        "python-json-logger>=3.1",
        # GET /metrics on the manager and nodes: Prometheus's own text format and histograms
        "prometheus-client>=0.17",
    ],
    extras_require={
        "pack": ["venv-pack>=0.2", "pyinstaller>=5.0"],
        "postgres": ["psycopg[binary]>=3.1"],
        # bench/peers.py: the same workload on Celery with a Redis broker, side by side
        "bench": ["celery>=5.3", "redis>=4.5"],
        # pytest-xdist: scripts/test.sh runs the suite on two workers (most tests wait on processes)
        # ruff: tests/unit/test_lint.py holds the repository to pyproject.toml's lint rules
        # cryptography: the TLS tests make their own CA and certificates
        # playwright drives Debian's chromium in the web interface's browser tests
        # openapi-spec-validator checks /openapi.json is valid OpenAPI 3.1; jsonschema checks
        # the end-to-end tests' answers against its response schemas
        "test": ["pytest>=7", "pytest-xdist>=3.0", "ruff>=0.4", "psycopg[binary]>=3.1", "venv-pack>=0.2",
                 "playwright>=1.40",
                 "cryptography>=41", "openapi-spec-validator>=0.7", "jsonschema>=4.18"],
        # scripts/fuzz_api.sh: schemathesis generates requests from /openapi.json against a live cluster
        "fuzz": ["schemathesis>=4.0,<5"],
    },
    entry_points={
        "console_scripts": [
            "litemanager=litepipeline.manager.server:main",
            "litenode=litepipeline.node.server:main",
            "litepipeline=litepipeline.client.cli:main",
            "liteconfig=litepipeline.client.liteconfig:main",
        ]
    },
)
