package registries_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/regshift/regshift/registries"
)

func valid() registries.Instance {
	return registries.Instance{Service: "orders", ID: "a-1", Address: "10.0.0.1", Port: 8080,
		Tags: []string{"v1"}, Metadata: map[string]string{"zone": "a"}}
}

func TestValidateAccepts(t *testing.T) {
	cases := map[string]func(*registries.Instance){
		"as is":              func(*registries.Instance) {},
		"IPv6 address":       func(i *registries.Instance) { i.Address = "::1" },
		"host name":          func(i *registries.Instance) { i.Address = "orders-1.eu.example.com" },
		"UUID id":            func(i *registries.Instance) { i.ID = "ca2fff8e-d756-480c-b59e-8297ff88624b" },
		"unicode id":         func(i *registries.Instance) { i.ID = "zürich:8080" },
		"dotted service":     func(i *registries.Instance) { i.Service = "com.example.Orders_v2" },
		"port bounds":        func(i *registries.Instance) { i.Port = 65535 },
		"no tags nor meta":   func(i *registries.Instance) { i.Tags, i.Metadata = nil, nil },
		"max metadata value": func(i *registries.Instance) { i.Metadata["k"] = strings.Repeat("v", registries.MaxMetadataValLen) },
		"max metadata keys": func(i *registries.Instance) {
			i.Metadata = map[string]string{}
			for n := range registries.MaxMetadataKeys {
				i.Metadata[fmt.Sprintf("k%d", n)] = "v"
			}
		},
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			in := valid()
			mod(&in)
			if err := registries.Validate(in); err != nil {
				t.Fatalf("Validate(%+v) = %v", in, err)
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	cases := map[string]struct {
		mod   func(*registries.Instance)
		field string
	}{
		"service with colon":  {func(i *registries.Instance) { i.Service = "a:b" }, "service"},
		"service leading dot": {func(i *registries.Instance) { i.Service = ".hidden" }, "service"},
		"long service":        {func(i *registries.Instance) { i.Service = strings.Repeat("s", registries.MaxServiceLen+1) }, "service"},
		"id with newline":     {func(i *registries.Instance) { i.ID = "a\nb" }, "id"},
		"id invalid UTF-8":    {func(i *registries.Instance) { i.ID = "a\xffb" }, "id"},
		"id dot":              {func(i *registries.Instance) { i.ID = "." }, "id"},
		"address with port":   {func(i *registries.Instance) { i.Address = "10.0.0.1:80" }, "address"},
		"too many tags":       {func(i *registries.Instance) { i.Tags = make([]string, registries.MaxTags+1) }, "tags"},
		"control char in tag": {func(i *registries.Instance) { i.Tags = []string{"a\x00"} }, "tags[0]"},
		"empty metadata key":  {func(i *registries.Instance) { i.Metadata = map[string]string{"": "v"} }, `metadata[""]`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := valid()
			tc.mod(&in)
			err := registries.Validate(in)
			var inv *registries.InvalidError
			if !errors.As(err, &inv) || !errors.Is(err, registries.ErrInvalid) || inv.Field != tc.field {
				t.Fatalf("Validate = %v, want an InvalidError on %q", err, tc.field)
			}
		})
	}
}

func TestEqualIgnoresTagOrderAndNilVersusEmpty(t *testing.T) {
	a, b := valid(), valid()
	a.Tags, b.Tags = []string{"x", "y"}, []string{"y", "x"}
	if !a.Equal(b) {
		t.Fatal("tag order made instances unequal")
	}
	a.Metadata, b.Metadata = nil, map[string]string{}
	if !a.Equal(b) {
		t.Fatal("nil and empty metadata made instances unequal")
	}
	b.Port++
	if a.Equal(b) {
		t.Fatal("different ports compared equal")
	}
}

func TestRetriable(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("x: %w", registries.ErrUnavailable), true},
		{fmt.Errorf("x: %w", registries.ErrSessionLost), true},
		{registries.ErrNotFound, false},
		{&registries.InvalidError{Field: "port", Reason: "0"}, false},
		{registries.ErrClosed, false},
		{errors.New("other"), false},
	}
	for _, tc := range cases {
		if got := registries.Retriable(tc.err); got != tc.want {
			t.Errorf("Retriable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
