"""Fleet manager tools on balena-sdk."""
