# Students ship __init__.py files too; this one also keeps the hostile conftest.py here from shadowing
# tests/conftest.py when pytest recurses into tests/ (see ../__init__.py).
