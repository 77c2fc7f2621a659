package subject

import "testing"

func TestTrimPrefixes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Order 42", "Order 42"},
		{"Re: Order 42", "Order 42"},
		{"RE: re:Re : Order 42", "Order 42"},
		{"Re[2]: Order 42", "Order 42"},
		{"Re(3): RE^2: Order 42", "Order 42"},
		{"RE: Fwd: Order 42", "Order 42"},
		{"AW: WG: Bestellung 42", "Bestellung 42"},
		{"SV: VS: Ordre 42", "Ordre 42"},
		{"Antw: Doorst: Bestelling 42", "Bestelling 42"},
		{"R: I: Rif: Ordine 42", "Ordine 42"},
		{"RE : TR : Réf. : Commande 42", "Commande 42"},
		{"RV: RES: ENC: Pedido 42", "Pedido 42"},
		{"Odp: PD: Zamówienie 42", "Zamówienie 42"},
		{"YNT: İLT: Sipariş 42", "Sipariş 42"},
		{"ΑΠ: ΣΧΕΤ: Παραγγελία 42", "Παραγγελία 42"},
		{"回复：转发: 订单 42", "订单 42"},
		{"答复: 回覆：订单 42", "订单 42"},
		{"返信: 転送: 注文 42", "注文 42"},
		{"Ответ: Пересл: Заказ 42", "Заказ 42"},
		{"Re: [users] Re: list topic", "[users] Re: list topic"},
		{"Regarding the order", "Regarding the order"},
		{"Rest: an ordinary word", "Rest: an ordinary word"},
		{"Invoice: March", "Invoice: March"},
		{"Re:", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := TrimPrefixes(tt.in); got != tt.want {
			t.Errorf("TrimPrefixes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSame(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"Order 42", "Order 42", true},
		{"RE: [Support] AW:  Order 42", "order 42", true},
		{"[users] Re: [dev] Fwd: Build broken", "Build broken", true},
		{"Re[2]: Fwd: Printer", "PRINTER", true},
		{"回复：打印机", "打印机", true},
		{"Order 42", "Order 43", false},
		{"Re:", "Fwd:", false},
		{"", "", false},
		{"[users]", "", false},
	}
	for _, tt := range tests {
		if got := Same(tt.a, tt.b); got != tt.want {
			t.Errorf("Same(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
