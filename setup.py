"""The optional compiled btsnoop record walk (analyzer/readers/_btsnoop_c.c). Everything else is
in pyproject.toml. ``optional=True``: without a C compiler the install still succeeds and the
reader uses its numpy walk, which finds the same records."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "analyzer.readers._btsnoop_c",
            ["analyzer/readers/_btsnoop_c.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
