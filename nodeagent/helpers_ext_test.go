package nodeagent_test

import "github.com/regshift/regshift/nodeagent/ifacepkg"

func digestOf(b []byte) string { return ifacepkg.Digest(b) }
