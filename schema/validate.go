package schema

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed *.json
var files embed.FS

// BaseURL is the base of every schema's $id.
const BaseURL = "https://regshift.dev/schema/"

// Files is the schema files, the public contract, as embedded in this build.
func Files() fs.FS { return files }

var compiled = sync.OnceValues(compileAll)

func compileAll() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", e.Name(), err)
		}
		if err := c.AddResource(BaseURL+e.Name(), doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", e.Name(), err)
		}
	}
	out := make(map[string]*jsonschema.Schema, len(specs))
	for t, s := range specs {
		sch, err := c.Compile(BaseURL + s.File())
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", s.File(), err)
		}
		out[t] = sch
	}
	return out, nil
}

// Validate checks body against the schema of type typ. The error wraps
// ErrUnknownType, ErrUnsupportedVersion or ErrInvalid.
func Validate(typ string, body []byte) error {
	if _, err := Lookup(typ); err != nil {
		return err
	}
	all, err := compiled()
	if err != nil {
		return fmt.Errorf("schema: %w", err) // a broken build, not a broken message
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %s: not JSON: %w", ErrInvalid, typ, err)
	}
	if err := all[typ].Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("%w: %s: %s", ErrInvalid, typ, FieldProblems(ve))
		}
		return fmt.Errorf("%w: %s: %w", ErrInvalid, typ, err)
	}
	return nil
}

// validate is Validate, but skips the JSON Schema for a body the fast path
// vouches for.
func validate(typ string, body []byte) error {
	if fastValid(typ, body) {
		return nil
	}
	return Validate(typ, body)
}

// Decode validates body against the schema of typ and decodes it into the
// type's Go value. A body the fast path vouches for (see fast.go) skips
// the JSON Schema; every other one is validated, and refused, as by
// Validate.
func Decode(typ string, body []byte) (Message, error) {
	if err := validate(typ, body); err != nil {
		return nil, err
	}
	spec, _ := Lookup(typ)
	m := spec.New()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, typ, err)
	}
	if c, ok := m.(crossChecker); ok {
		if err := c.crossCheck(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, typ, err)
		}
	}
	return m, nil
}

// crossChecker is a type with rules JSON Schema cannot state, between fields.
type crossChecker interface {
	crossCheck() error
}

// Encode marshals m into its wire form and validates it against its schema,
// so that nothing this build sends breaks the contract.
func Encode(m Message) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.MessageType(), err)
	}
	if err := validate(m.MessageType(), b); err != nil {
		return nil, err
	}
	if c, ok := m.(crossChecker); ok {
		if err := c.crossCheck(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, m.MessageType(), err)
		}
	}
	return b, nil
}
