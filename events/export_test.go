package events

// ReloadKeyring is Keyring.reload, for tests and benchmarks.
func ReloadKeyring(k *Keyring, thorough bool) (bool, error) { return k.reload(thorough) }
