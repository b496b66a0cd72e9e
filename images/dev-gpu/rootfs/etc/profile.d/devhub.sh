# devhub: login shells (ssh, `bash -l`, Jupyter and VS Code terminals) keep the image's PATH
# (the TensorFlow python, pip, jupyter; pip --user scripts; CUDA's ptxas), which Debian's
# /etc/profile resets. The value is the image's ENV PATH, written here at build time.
. /etc/devhub/path.sh
