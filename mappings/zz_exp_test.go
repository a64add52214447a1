package mappings_test

import (
	"context"
	"testing"
)

func BenchmarkExp(b *testing.B) {
	in := benchInput(b)
	for _, tc := range []struct{ name, src string }{
		{"base", "fields: {A: first_name, B: last_name, C: points.balance, D: tier}"},
		{"concat", `fields: {A: {expr: 'first_name + " " + last_name'}, C: points.balance, D: tier}`},
		{"slice", `fields: {A: {expr: 'upper(first_name[0:1]) + first_name[1:] + " " + upper(last_name)'}, C: points.balance, D: tier}`},
		{"round", `fields: {A: first_name, B: last_name, C: {expr: 'roundTo(points.balance * 0.01, 2)'}, D: tier}`},
		{"bool", `fields: {A: first_name, B: last_name, C: {expr: '(points.lifetime ?? 0) > 25000 && tier == "gold"'}}`},
		{"const", `fields: {A: first_name, B: last_name, C: points.balance, D: tier, E: {expr: '1 + 2'}}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := mustCompile(b, tc.src)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Apply(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
