# devhub JupyterHub configuration: everything comes from environment variables (devhub.settings);
# the logic lives in hub/devhub/config.py. Overrides: jupyterhub_config.d/README.md.
# Errors exit here: traitlets would otherwise log them and start with JupyterHub's defaults.
import sys
import traceback

from devhub import config, secrets, settings

try:
    config.configure(c, settings.load(), __file__)  # noqa: F821 - `c` is provided by JupyterHub
except (settings.SettingsError, secrets.SecretError) as exc:
    sys.exit(f"devhub: refusing to start: {exc}")
except Exception:
    traceback.print_exc()
    sys.exit("devhub: refusing to start: the configuration failed (traceback above)")
