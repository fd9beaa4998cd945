import subprocess
import sys

import sphinx_tasks


def test_import_loads_nothing_until_a_name_is_used():
    code = (
        "import sys, sphinx_tasks; "
        "print(sorted(m for m in sys.modules if m.startswith('sphinx_tasks.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves():
    for name in sphinx_tasks.__all__:
        assert getattr(sphinx_tasks, name) is not None, name
    assert sphinx_tasks.metrics.__name__ == "sphinx_tasks.metrics"
    assert "get_template" in dir(sphinx_tasks)


def test_unknown_name_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sphinx_tasks.nope  # noqa: B018
