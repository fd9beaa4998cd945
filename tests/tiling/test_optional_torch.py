"""sphinx-tiling works without torch; the torch functions say which extra to install."""

import subprocess
import sys
import textwrap


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_import_does_not_load_torch():
    result = run_python(
        """
        import sys
        import sphinx_tiling
        assert "torch" not in sys.modules, "importing sphinx_tiling loaded torch"
        print(sphinx_tiling.__version__)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0.1.0"


def test_without_torch_pil_path_works_and_tensor_path_names_the_extra():
    result = run_python(
        """
        import sys
        sys.modules["torch"] = None  # makes `import torch` fail as if not installed
        import numpy as np
        import sphinx_tiling
        tiling = sphinx_tiling.tile(np.zeros((20, 30, 3), np.uint8), "sphinx-1k")
        assert len(tiling.views) == 5
        for call in (sphinx_tiling.tile_tensor, sphinx_tiling.tile_batch):
            try:
                call(np.zeros((20, 30, 3), np.uint8), "sphinx")
            except ImportError as err:
                print(err)
            else:
                raise AssertionError(f"{call.__name__} worked without torch")
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert all("pip install 'sphinx-tiling[torch]'" in line for line in lines)
