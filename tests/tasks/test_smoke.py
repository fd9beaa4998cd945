import sphinx_tasks

def test_version():
    assert sphinx_tasks.__version__ == "0.1.0"
