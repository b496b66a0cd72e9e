"""Execute a notebook headless in a fresh kernel (nbclient), as a user's server would run it.

argv: the notebook's path. Prints one JSON object: cells run, errors (with tracebacks), output types.
"""

import json
import sys

import nbclient
import nbformat

path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                                 resources={"metadata": {"path": str(__import__("pathlib").Path(path).parent)}})
client.execute()
code_cells = [c for c in nb.cells if c.cell_type == "code"]
errors = [o for c in code_cells for o in c.outputs if o.output_type == "error"]
print(json.dumps({
    "code_cells": len(code_cells),
    "executed": sum(1 for c in code_cells if c.execution_count),
    "errors": ["\n".join(e.get("traceback", [])) for e in errors],
    "mime_types": sorted({m for c in code_cells for o in c.outputs for m in o.get("data", {})}),
    "text": "".join(o.get("text", "") for c in code_cells for o in c.outputs if o.output_type == "stream"),
}))
