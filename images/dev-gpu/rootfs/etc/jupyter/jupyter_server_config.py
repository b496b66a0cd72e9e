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
# The TensorFlow environment's kernel is the only one and the default.
c.MultiKernelManager.default_kernel_name = "python3"
