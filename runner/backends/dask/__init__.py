"""The Dask backend (`pip install 'mprun[dask]'`): backend.py on mprun's side, agent.py on each
worker, objects.py the shared objects both sides use, support.py what it refuses."""
