package openapi

import "testing"

func BenchmarkNew(b *testing.B) {
	res := servedResources()
	for i := 0; i < b.N; i++ {
		if _, err := New(res); err != nil {
			b.Fatal(err)
		}
	}
}
