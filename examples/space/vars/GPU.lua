-- NVIDIA driver from Debian's non-free section.
table.insert(PACKAGES, "nvidia-driver")
KERNEL_MODULES = {"nvidia", "nvidia_uvm"}
