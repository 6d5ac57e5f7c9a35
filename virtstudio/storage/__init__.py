"""Storage: disk images (qemu-img), pools and thin provisioning, free of Qt."""
