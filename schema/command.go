package schema

import "fmt"

// Install fetches an interface package, checks its digest and unpacks it.
type Install struct {
	CommandHeader
	Interface Interface `json:"interface"`
}

// crossCheck: the signed package digest is the one the package must have.
func (c *Install) crossCheck() error {
	if c.PackageDigest != c.Interface.Package.Digest {
		return fmt.Errorf("package_digest %s differs from interface.package.digest %s", c.PackageDigest, c.Interface.Package.Digest)
	}
	return nil
}

// Activate makes an installed interface the active one.
type Activate struct {
	CommandHeader
	Interface string `json:"interface"`
}

// SwitchBack returns a node to the old interface.
type SwitchBack struct {
	CommandHeader
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason"`
}

// Uninstall removes an interface that is not active.
type Uninstall struct {
	CommandHeader
	Interface string `json:"interface"`
}

// Resync asks an agent to re-register and say hello with its actual state.
type Resync struct {
	CommandHeader
	Reason string `json:"reason,omitempty"`
}

// MessageType implements Message.
func (*Install) MessageType() string { return TypeInstall }

// MessageType implements Message.
func (*Activate) MessageType() string { return TypeActivate }

// MessageType implements Message.
func (*SwitchBack) MessageType() string { return TypeSwitchBack }

// MessageType implements Message.
func (*Uninstall) MessageType() string { return TypeUninstall }

// MessageType implements Message.
func (*Resync) MessageType() string { return TypeResync }
