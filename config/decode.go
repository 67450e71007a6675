package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// envconfig.Process reads only the process environment. To read the
// variables through a lookup function instead, Load walks the struct
// itself with envconfig's conventions (variable PREFIX_<envconfig tag>,
// upper-cased; the default tag when the variable is empty or unset) and
// converts each value the way envconfig does (decode below): envconfig's
// Decoder and Setter interfaces first, then encoding.TextUnmarshaler and
// BinaryUnmarshaler, then the kinds. TestDecodeAgreesWithEnvconfig holds
// it to envconfig.Process on the real environment.

// key is the variable a field is read from.
func key(f reflect.StructField) string {
	name := f.Tag.Get("envconfig")
	if name == "" {
		name = f.Name
	}
	return strings.ToUpper(Prefix + "_" + name)
}

// decodeAll sets every field of cfg from getenv and returns one problem
// line per value that does not convert.
func decodeAll(cfg *Config, getenv func(string) string) []string {
	v := reflect.ValueOf(cfg).Elem()
	t := v.Type()
	var problems []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("ignored") == "true" {
			continue
		}
		value := getenv(key(f))
		if value == "" {
			value = f.Tag.Get("default")
		}
		if value == "" {
			continue // envconfig leaves a field with no value and no default alone
		}
		if err := decode(value, v.Field(i)); err != nil {
			problems = append(problems, describe(f, &envconfig.ParseError{
				KeyName: key(f), FieldName: f.Name, TypeName: f.Type.String(), Value: value, Err: err,
			}))
		}
	}
	return problems
}

// decode sets field from value as envconfig's processField does.
func decode(value string, field reflect.Value) error {
	if field.CanAddr() {
		switch d := field.Addr().Interface().(type) {
		case envconfig.Decoder:
			return d.Decode(value)
		case envconfig.Setter:
			return d.Set(value)
		case encoding.TextUnmarshaler:
			return d.UnmarshalText([]byte(value))
		case encoding.BinaryUnmarshaler:
			return d.UnmarshalBinary([]byte(value))
		}
	}
	typ := field.Type()
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
		if field.IsNil() {
			field.Set(reflect.New(typ))
		}
		field = field.Elem()
	}
	switch typ.Kind() {
	case reflect.String:
		field.SetString(value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var n int64
		var err error
		if typ == reflect.TypeOf(time.Duration(0)) {
			var d time.Duration
			d, err = time.ParseDuration(value)
			n = int64(d)
		} else {
			n, err = strconv.ParseInt(value, 0, typ.Bits())
		}
		if err != nil {
			return err
		}
		field.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(value, 0, typ.Bits())
		if err != nil {
			return err
		}
		field.SetUint(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return err
		}
		field.SetBool(b)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(value, typ.Bits())
		if err != nil {
			return err
		}
		field.SetFloat(x)
	case reflect.Slice:
		sl := reflect.MakeSlice(typ, 0, 0)
		if typ.Elem().Kind() == reflect.Uint8 {
			sl = reflect.ValueOf([]byte(value)).Convert(typ)
		} else if strings.TrimSpace(value) != "" {
			parts := strings.Split(value, ",")
			sl = reflect.MakeSlice(typ, len(parts), len(parts))
			for i, p := range parts {
				if err := decode(p, sl.Index(i)); err != nil {
					return err
				}
			}
		}
		field.Set(sl)
	default:
		// Config has no maps or nested structs; a new field of such a
		// type must be taught here (the agreement test would fail).
		return fmt.Errorf("config: fields of type %s are not supported", typ)
	}
	return nil
}
