# Jupyter Server settings of the devhub user image (standalone JupyterLab and jupyterhub-singleuser).
c = get_config()  # noqa: F821

c.ServerApp.ip = "0.0.0.0"
c.ServerApp.port = 8888
c.ServerApp.open_browser = False
c.ServerApp.root_dir = "/home/jovyan"
# Terminals are login shells, like SSH sessions.
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "-l"]}
# Uploads up to 512 MB, matching nginx's client_max_body_size.
c.ServerApp.max_body_size = 512 * 1024 * 1024
c.ServerApp.max_buffer_size = 512 * 1024 * 1024
# Under the hub: how long a browser's access to this server is trusted before the hub is asked
# again. 30 s instead of 5 min, so a revoked share (the hub's /hub/sharing page) or a blocked user
# loses access within 30 s; it costs one small hub API call per open browser every 30 s.
c.HubOAuth.cache_max_age = 30
# The TensorFlow environment's kernel is the only one and the default.
c.MultiKernelManager.default_kernel_name = "python3"

# JupyterLab's news feed and update check need the internet and would only nag: off.
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
# The extension manager lists what is installed and installs nothing: its PyPI mode parses a proxy
# URL with credentials wrongly (the per-user egress proxy's), so it could not search PyPI here, and
# it wrote that URL, password included, to the server's log on every start. Extensions install
# like any package, `pip install <name>` in a terminal (into ~/.local, kept with the home), then a
# restart of the server.
c.LabApp.extension_manager = "readonly"

# TensorBoard at the user's own authenticated URL (<server>/tensorboard/, a launcher tile), on the
# logs under ~/logs. jupyter-server-proxy starts it on first use; TensorBoard imports TensorFlow,
# which takes a while, hence the timeout. Any other port is at <server>/proxy/<port>/.
c.ServerProxy.servers = {
    "tensorboard": {
        "command": [
            "tensorboard", "--logdir", "/home/jovyan/logs", "--host", "127.0.0.1", "--port", "{port}",
            "--path_prefix", "{base_url}tensorboard",
        ],
        "absolute_url": True,
        "timeout": 120,
        "launcher_entry": {"title": "TensorBoard"},
    }
}

# Server extensions that come with JupyterLab but serve nothing here, off because every server's
# start pays for them (py-spy of a JupyterLab start: 3.3 CPU-s before, 1.1 s with these and the
# lock's leaving out rfc3987-syntax):
# - jupyter-lsp: the image has no language server for it to find; its search costs about 0.2 s.
# - notebook-shim: maps classic Notebook (NotebookApp, nbserver_extensions) settings onto Jupyter
#   Server for nbclassic; linking it imports IPython's terminal and prompt_toolkit, about 0.5 s.
#   Settings go under c.ServerApp here.
c.ServerApp.jpserver_extensions = {"jupyter_lsp": False, "notebook_shim": False}
