"""devhub's own JupyterHub scopes and the `user` role that grants them: who may read or change SSH
keys and look up where a user's sshd is (devhub.ssh_handlers enforces them, devhub.services grants
them to the SSH gateway)."""

SCOPE_KEYS_READ = "custom:ssh-keys:read"
SCOPE_KEYS_MANAGE = "custom:ssh-keys:manage"
SCOPE_ROUTE = "custom:ssh-route:read"
CUSTOM_SCOPES = {
    SCOPE_KEYS_READ: {"description": "Read users' SSH public keys."},
    SCOPE_KEYS_MANAGE: {
        "description": "Add and delete users' SSH public keys.",
        "subscopes": [SCOPE_KEYS_READ],
    },
    SCOPE_ROUTE: {"description": "Look up the address and SSH host key of users' running servers."},
}
# Sharing one's own servers (devhub.sharing), and naming the user shared with (JupyterHub asks
# read:users:name for that). A share grants access:servers only: SSH scopes are never share scopes.
SHARING_SCOPES = ["shares!user", "read:users:name"]
# The default `user` role plus managing one's own keys (`!user`: the role's holder) and sharing.
USER_ROLE = {"name": "user", "scopes": ["self", f"{SCOPE_KEYS_MANAGE}!user", *SHARING_SCOPES]}
