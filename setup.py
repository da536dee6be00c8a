"""Packaging for LitePipeline: one package, four console scripts."""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
# read, not import: the build runs before the package's dependencies are installed
with open(os.path.join(HERE, "litepipeline", "version.py"), encoding="utf-8") as fp:
    __version__ = re.search(r'__version__ = "([^"]+)"', fp.read()).group(1)

setup(
    name="litepipeline",
    version=__version__,
    description="A distributed pipeline system: packaged Python jobs as DAGs on a few machines",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["litepipeline", "litepipeline.*"]),
    package_data={"litepipeline.manager.store": ["alembic.ini", "migrations/*.py", "migrations/versions/*.py"]},
    install_requires=[
        "tornado>=6.2",
        "PyYAML>=6.0",
        "requests>=2.28",
        "SQLAlchemy>=2.0",
        "alembic>=1.12",
        # streaming multipart parsing of application uploads (never held whole in memory)
        "streaming-form-data>=1.13",
    ],
    extras_require={
        "pack": ["venv-pack>=0.2", "pyinstaller>=5.0"],
        "postgres": ["psycopg[binary]>=3.1"],
        # cryptography: the TLS tests make their own CA and certificates
        "test": ["pytest>=7", "psycopg[binary]>=3.1", "venv-pack>=0.2", "cryptography>=41"],
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
