"""The compiled part of the package: the sequential residual coder (built at install; a user
command never compiles). Everything else is configured in pyproject.toml."""

from setuptools import Extension, setup

# Integer-only code: -ffp-contract=off and no -ffast-math are belt and braces (tests rebuild it
# with other flags and check that the coded bytes do not change).
SEQCORE_FLAGS = ["-O3", "-std=c99", "-ffp-contract=off", "-fno-fast-math"]

setup(
    ext_modules=[
        Extension(
            "lossless_bpg.sequential._seqcore",
            sources=["lossless_bpg/sequential/seqcore.c", "lossless_bpg/sequential/_seqcore_module.c"],
            depends=["lossless_bpg/sequential/seqcore.h"],
            extra_compile_args=SEQCORE_FLAGS,
        )
    ]
)
