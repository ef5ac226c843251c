package registries

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits every implementation enforces, chosen so that what one registry
// accepts every other one stores unchanged (Consul's metadata limits are the
// tightest).
const (
	MaxServiceLen     = 128
	MaxIDLen          = 255
	MaxAddressLen     = 255
	MaxTags           = 64
	MaxTagLen         = 255
	MaxMetadataKeys   = 64
	MaxMetadataKeyLen = 128
	MaxMetadataValLen = 512
)

var (
	serviceRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)
	metaKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	hostRE    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)
)

// Validate checks an instance against the contract every Registry enforces
// before writing anything; the error is an *InvalidError wrapping ErrInvalid.
func Validate(inst Instance) error {
	if err := ValidateService(inst.Service); err != nil {
		return err
	}
	if err := ValidateID(inst.ID); err != nil {
		return err
	}
	if err := ValidateAddress(inst.Address); err != nil {
		return err
	}
	if inst.Port < 1 || inst.Port > 65535 {
		return invalid("port", "%d is outside 1-65535", inst.Port)
	}
	if err := validateTags(inst.Tags); err != nil {
		return err
	}
	return validateMetadata(inst.Metadata)
}

// ValidateService checks a service name: 1-128 characters of letters,
// digits, '.', '_' and '-', not starting with '.' or '-'. Names that pass
// are valid ZooKeeper path segments and Consul service names alike.
func ValidateService(service string) error {
	switch {
	case service == "":
		return invalid("service", "empty")
	case len(service) > MaxServiceLen:
		return invalid("service", "%d bytes, limit %d", len(service), MaxServiceLen)
	case !serviceRE.MatchString(service):
		return invalid("service", "%q: only letters, digits, '.', '_' and '-', not starting with '.' or '-'", service)
	}
	return nil
}

// ValidateID checks an instance id: 1-255 bytes of printable UTF-8 without
// '/' or whitespace, and not "." or "..".
func ValidateID(id string) error {
	switch {
	case id == "":
		return invalid("id", "empty")
	case len(id) > MaxIDLen:
		return invalid("id", "%d bytes, limit %d", len(id), MaxIDLen)
	case !utf8.ValidString(id):
		return invalid("id", "not valid UTF-8")
	case strings.Contains(id, "/"):
		return invalid("id", "%q contains '/'", id)
	case id == "." || id == "..":
		return invalid("id", "%q is reserved", id)
	case strings.IndexFunc(id, notPrintable) >= 0:
		return invalid("id", "%q contains whitespace or a control character", id)
	}
	return nil
}

// ValidateAddress checks an address consumers dial: an IP address or a host
// name of at most 255 bytes.
func ValidateAddress(addr string) error {
	switch {
	case addr == "":
		return invalid("address", "empty")
	case len(addr) > MaxAddressLen:
		return invalid("address", "%d bytes, limit %d", len(addr), MaxAddressLen)
	case net.ParseIP(addr) != nil, hostRE.MatchString(addr):
		return nil
	}
	return invalid("address", "%q is neither an IP address nor a host name", addr)
}

func validateTags(tags []string) error {
	if len(tags) > MaxTags {
		return invalid("tags", "%d tags, limit %d", len(tags), MaxTags)
	}
	for i, t := range tags {
		switch {
		case t == "":
			return invalid(fmt.Sprintf("tags[%d]", i), "empty")
		case len(t) > MaxTagLen:
			return invalid(fmt.Sprintf("tags[%d]", i), "%d bytes, limit %d", len(t), MaxTagLen)
		case !utf8.ValidString(t) || strings.IndexFunc(t, unicode.IsControl) >= 0:
			return invalid(fmt.Sprintf("tags[%d]", i), "%q is not printable UTF-8", t)
		}
	}
	return nil
}

func validateMetadata(md map[string]string) error {
	if len(md) > MaxMetadataKeys {
		return invalid("metadata", "%d keys, limit %d", len(md), MaxMetadataKeys)
	}
	for k, v := range md {
		field := fmt.Sprintf("metadata[%.40q]", k)
		switch {
		case len(k) > MaxMetadataKeyLen:
			return invalid(field, "key of %d bytes, limit %d", len(k), MaxMetadataKeyLen)
		case !metaKeyRE.MatchString(k):
			return invalid(field, "key: only letters, digits, '_' and '-'")
		case strings.HasPrefix(k, "consul-"):
			return invalid(field, "key prefix \"consul-\" is reserved")
		case len(v) > MaxMetadataValLen:
			return invalid(field, "value of %d bytes, limit %d", len(v), MaxMetadataValLen)
		case !utf8.ValidString(v):
			return invalid(field, "value is not valid UTF-8")
		}
	}
	return nil
}

func notPrintable(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
