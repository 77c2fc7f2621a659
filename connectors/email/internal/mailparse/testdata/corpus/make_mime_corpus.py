#!/usr/bin/env python3
"""Writes the charset-*, mime-*, tnef, smime and pgp classes of the corpus.

Each mail is written the way the client named beside it writes one: raw
bytes for old and odd clients (their charsets encoded with Python's codecs,
which are iconv's tables), Python's email package with its policies for
modern ones, openssl smime for S/MIME, gpg for PGP, and the small TNEF
writer below for winmail.dat (no tool here writes TNEF). The expectation of
each mail is written by hand here, from what its sender wrote and what a
person reading it sees: the parser is never run to make them.

Run from this directory: python3 make_mime_corpus.py. Signatures, keys and
boundaries change on every run; the expectations do not.
"""

import base64
import json
import os
import quopri
import struct
import subprocess
import sys
import tempfile
from email import policy
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

HERE = os.path.dirname(os.path.abspath(__file__))
TO = "support@example.com"


def write(cls, name, raw, subject, sender, text, attachments=()):
    """Writes <cls>/<name>.eml and its expectation."""
    d = os.path.join(HERE, cls)
    os.makedirs(d, exist_ok=True)
    if isinstance(raw, str):
        raw = raw.encode("ascii")
    with open(os.path.join(d, name + ".eml"), "wb") as f:
        f.write(raw)
    want = {
        "subject": subject,
        "from": sender,
        "text": text,
        "attachments": list(attachments),
        "automatic": False,
    }
    with open(os.path.join(d, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(want, f, ensure_ascii=False, indent=2)
        f.write("\n")


def crlf(b):
    """LF to CRLF, as mail travels."""
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def bword(s, cs):
    return "=?%s?B?%s?=" % (cs, base64.b64encode(s.encode(cs)).decode())


def qword(s, cs):
    q = quopri.encodestring(s.encode(cs), header=True).decode()
    return "=?%s?Q?%s?=" % (cs, q)


def b64(data):
    e = base64.b64encode(data).decode()
    return "\n".join(e[i:i + 76] for i in range(0, len(e), 76)) + "\n"


def head(sender, subject, date, msgid, extra=""):
    """A header block; sender and subject may hold raw bytes."""
    h = b"From: " + enc(sender) + b"\nTo: " + TO.encode() + b"\nSubject: " + enc(subject)
    h += ("\nDate: %s\nMessage-ID: <%s>\n" % (date, msgid)).encode()
    return h + enc(extra)


def enc(s):
    return s if isinstance(s, bytes) else s.encode("ascii")


def plain_mail(sender, subject, date, msgid, body, ctype, cte="8bit", extra="", mime=True):
    h = head(sender, subject, date, msgid, extra)
    if mime:
        h += b"MIME-Version: 1.0\n"
        if ctype is not None:
            h += ("Content-Type: %s\n" % ctype).encode()
        h += ("Content-Transfer-Encoding: %s\n" % cte).encode()
    return crlf(h + b"\n" + body)


# ---------------------------------------------------------------- charsets


def charset_undeclared():
    c = "charset-undeclared"

    text = "您好，\n\n我上周在贵店购买的蓝牙耳机至今还没有收到，订单号是 20260311-8842。请帮我查一下物流信息。\n\n谢谢！\n张伟"
    write(c, "gbk-foxmail-no-charset", plain_mail(
        "张伟 <zhangwei@example.cn>".encode("gbk"), "订单还没有收到".encode("gbk"),
        "Wed, 11 Mar 2026 10:02:11 +0800", "20260311100211.4471@example.cn", text.encode("gbk"),
        "text/plain", extra="X-Mailer: Foxmail 6, 15, 201, 23 [cn]\n"),
        "订单还没有收到", "zhangwei@example.cn", text)

    text = "您好：\n\n我在三月五日訂購的咖啡機還沒有送到，訂單編號 TW-55102。請問什麼時候可以寄出？\n\n謝謝\n陳小姐"
    write(c, "big5-outlook-express-no-charset", plain_mail(
        "\"Chen\" <chen.mei@example.tw>", bword("訂單查詢", "big5"),
        "Thu, 12 Mar 2026 09:15:40 +0800", "000801d2a1b2$4c3e5f60$0100a8c0@chen", text.encode("big5"),
        "text/plain", extra="X-Mailer: Microsoft Outlook Express 6.00.2900.5512\n"),
        "訂單查詢", "chen.mei@example.tw", text)

    text = "お世話になっております。\n\n先日購入したコーヒーメーカーが壊れていました。返品の手続きを教えてください。\n\n山田花子"
    write(c, "sjis-no-charset", plain_mail(
        "yamada@example.jp", "返品について".encode("shift_jis"),
        "Fri, 13 Mar 2026 14:20:00 +0900", "200603131420.AA01234@example.jp", text.encode("shift_jis"),
        "text/plain"),
        "返品について", "yamada@example.jp", text)

    text = "안녕하세요.\n\n지난주에 주문한 상품이 아직 도착하지 않았습니다. 주문번호는 KR-7781입니다. 배송 상황을 확인해 주세요.\n\n감사합니다.\n김민수"
    write(c, "euckr-no-content-type", plain_mail(
        "Kim Minsu <kim.minsu@example.kr>", "배송 문의".encode("euc-kr"),
        "Sat, 14 Mar 2026 11:00:00 +0900", "kr-7781-1@example.kr", text.encode("euc-kr"),
        None),
        "배송 문의", "kim.minsu@example.kr", text)

    text = "Здравствуйте!\n\nМой заказ номер 4471 до сих пор не пришёл. Подскажите, пожалуйста, где он сейчас?\n\nС уважением,\nИван Петров"
    write(c, "koi8r-thebat-no-charset", plain_mail(
        "Ivan Petrov <ivan.petrov@example.ru>", bword("Вопрос о заказе", "koi8-r"),
        "Sun, 15 Mar 2026 18:30:00 +0300", "1731230948.20260315183000@example.ru", text.encode("koi8-r"),
        "text/plain", extra="X-Mailer: The Bat! (v3.5.30) Professional\n"),
        "Вопрос о заказе", "ivan.petrov@example.ru", text)

    text = "Добрый день!\n\nПрошу вернуть деньги за заказ 9902, товар пришёл повреждённым.\n\nОльга"
    write(c, "cp1251-raw-headers", plain_mail(
        "Ольга Смирнова <olga@example.ru>".encode("cp1251"), "Возврат денег".encode("cp1251"),
        "Mon, 16 Mar 2026 08:45:00 +0300", "olga-9902@example.ru", text.encode("cp1251"),
        None, mime=False),
        "Возврат денег", "olga@example.ru", text)

    text = "Bonjour,\n\nJ'ai reçu ma commande hier mais la boîte était abîmée et il manque un élément.\nPouvez-vous m'envoyer la pièce manquante ?\n\nCordialement,\nHélène Dupré"
    write(c, "latin1-no-mime", plain_mail(
        "Hélène Dupré <helene.dupre@example.fr>".encode("latin-1"), "Problème avec ma commande".encode("latin-1"),
        "Tue, 17 Mar 2026 09:12:00 +0100", "hd-0317@example.fr", text.encode("latin-1"), None, mime=False),
        "Problème avec ma commande", "helene.dupre@example.fr", text)

    text = "Hello,\n\nI was charged €49.90 twice for order #3310 – could you “please” refund the duplicate?\n\nThanks,\nMark O’Neill"
    write(c, "cp1252-quotes-no-charset", plain_mail(
        "Mark O'Neill <mark.oneill@example.ie>", "Double charge", "Wed, 18 Mar 2026 16:05:00 +0000",
        "mark-3310@example.ie", text.encode("cp1252"), "text/plain"),
        "Double charge", "mark.oneill@example.ie", text)

    text = "いつもお世話になっております。\n注文番号JP-3310の配送状況を教えてください。\n\n佐藤"
    write(c, "iso2022jp-no-charset", plain_mail(
        "Sato <sato@example.jp>", bword("お問い合わせ", "iso-2022-jp"), "Thu, 19 Mar 2026 10:00:00 +0900",
        "sato-3310@example.jp", text.encode("iso-2022-jp"), None, cte="7bit"),
        "お問い合わせ", "sato@example.jp", text)

    text = "Dzień dobry,\n\nzamówienie nr 5521 nie dotarło. Proszę o sprawdzenie, gdzie jest przesyłka, i o wiadomość zwrotną.\n\nPozdrawiam,\nZbigniew Łukasiewicz"
    write(c, "cp1250-polish-no-charset", plain_mail(
        "Zbigniew <zbigniew@example.pl>", "Zamowienie 5521", "Fri, 20 Mar 2026 12:00:00 +0100",
        "zl-5521@example.pl", text.encode("cp1250"), "text/plain"),
        "Zamowienie 5521", "zbigniew@example.pl", text)

    html = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head>'
            '<body><p>您好，请问发票什么时候可以开出来？</p><p>李娜</p></body></html>')
    write(c, "html-meta-gb2312", plain_mail(
        "Li Na <lina@example.cn>", "Invoice request", "Sat, 21 Mar 2026 15:30:00 +0800",
        "lina-inv@example.cn", html.encode("gbk"), "text/html"),
        "Invoice request", "lina@example.cn", "您好，请问发票什么时候可以开出来？\n\n李娜")

    text = "Hola,\n\nmi pedido llegó incompleto: faltan dos piezas del armario.\n¿Pueden enviármelas?\n\nGracias,\nMaría José Núñez"
    write(c, "utf8-no-charset", plain_mail(
        "María José Núñez <mjnunez@example.es>".encode(), "Pedido incompleto – faltan piezas".encode(),
        "Sun, 22 Mar 2026 19:00:00 +0100", "mjn-armario@example.es", text.encode(), "text/plain"),
        "Pedido incompleto – faltan piezas", "mjnunez@example.es", text)


def charset_wrong():
    c = "charset-wrong"

    text = "Sehr geehrte Damen und Herren,\n\ndie gelieferte Waschmaschine läuft nicht. Bitte schicken Sie einen Techniker.\n\nMit freundlichen Grüßen\nJürgen Weiß"
    write(c, "utf8-declared-latin1-body", plain_mail(
        "Juergen Weiss <j.weiss@example.de>", "=?utf-8?Q?Waschmaschine_defekt?=", "Mon, 23 Mar 2026 08:00:00 +0100",
        "jw-wm@example.de", text.encode("latin-1"), "text/plain; charset=utf-8"),
        "Waschmaschine defekt", "j.weiss@example.de", text)

    text = "Bonjour, je souhaite annuler ma réservation du 12 mars. Merci de me répondre rapidement.\nÉlodie"
    subj = "=?ISO-8859-1?Q?%s?=" % quopri.encodestring("Annulation de réservation".encode(), header=True).decode()
    write(c, "latin1-declared-utf8-webform", plain_mail(
        "elodie.martin@example.fr", subj, "Tue, 24 Mar 2026 21:10:00 +0100", "form-88812@web.example.fr",
        text.encode(), "text/plain; charset=iso-8859-1", extra="X-Mailer: PHP/5.6.40\n"),
        "Annulation de réservation", "elodie.martin@example.fr", text)

    text = "您好，我叫王喆，订单号 CN-1180 的发票抬头写错了，请帮忙修改。"
    write(c, "gb2312-with-gbk-chars", plain_mail(
        "Wang Zhe <wangzhe@example.cn>", bword("发票抬头错误", "gbk").replace("?gbk?", "?gb2312?"),
        "Wed, 25 Mar 2026 10:30:00 +0800", "wz-1180@example.cn", b64(text.encode("gbk")).encode(),
        "text/plain; charset=gb2312", cte="base64"),
        "发票抬头错误", "wangzhe@example.cn", text)

    text = "Здравствуйте!\n\nПрошу заменить размер обуви в заказе 7310 с 42 на 43.\n\nСпасибо,\nДмитрий"
    write(c, "koi8r-declared-cp1251-body", plain_mail(
        "Dmitry <dmitry@example.ru>", bword("Замена размера", "koi8-r"), "Thu, 26 Mar 2026 13:00:00 +0300",
        "dm-7310@example.ru", text.encode("cp1251"), "text/plain; charset=koi8-r"),
        "Замена размера", "dmitry@example.ru", text)

    text = "Buongiorno,\n\nnon ho ancora ricevuto il rimborso per l'ordine 2218. Potete verificare perché?\n\nGrazie,\nNiccolò"
    write(c, "usascii-declared-latin1-body", plain_mail(
        "Niccolo Rossi <n.rossi@example.it>", "Rimborso ordine 2218", "Fri, 27 Mar 2026 09:40:00 +0100",
        "nr-2218@example.it", text.encode("latin-1"), "text/plain; charset=us-ascii"),
        "Rimborso ordine 2218", "n.rossi@example.it", text)

    text = "Hi,\n\nthe café machine you sent me doesn’t heat – can I get a replacement?\n\nRenée"
    write(c, "unknown-label-cp1252-body", plain_mail(
        "Renee <renee@example.com>", "Broken machine", "Sat, 28 Mar 2026 11:11:00 -0500",
        "rn-broken@example.com", text.encode("cp1252"), 'text/plain; charset="x-unknown"'),
        "Broken machine", "renee@example.com", text)

    text = "Bonjour, la facture indique 3 articles au lieu de 2. Merci de la corriger.\nFrançois"
    write(c, "subject-latin1-word-with-utf8", plain_mail(
        "=?ISO-8859-1?Q?Fran=C3=A7ois_Girard?= <f.girard@example.fr>",
        "=?ISO-8859-1?Q?Re=C3=A7u_une_facture_erron=C3=A9e?=", "Sun, 29 Mar 2026 17:20:00 +0200",
        "fg-fact@example.fr", quopri.encodestring(text.encode("latin-1")), "text/plain; charset=iso-8859-1",
        cte="quoted-printable"),
        "Reçu une facture erronée", "f.girard@example.fr", text)

    # A client that cuts the UTF-8 of the subject into words by bytes,
    # splitting characters.
    subj = "Заказ не доставлен".encode()
    words = " ".join("=?UTF-8?B?%s?=" % base64.b64encode(subj[i:i + 7]).decode() for i in range(0, len(subj), 7))
    text = "Добрый день, заказ 6612 так и не доставлен.\nНаталья"
    write(c, "subject-utf8-words-split-characters", plain_mail(
        "Natalia <natalia@example.ru>", words, "Mon, 30 Mar 2026 10:00:00 +0300", "nt-6612@example.ru",
        text.encode(), "text/plain; charset=utf-8"),
        "Заказ не доставлен", "natalia@example.ru", text)

    text = "안녕하세요. 환불 요청드립니다. 주문번호 KR-2290 상품이 파손되어 도착했습니다.\n\n이지은"
    write(c, "euckr-declared-utf8-body", plain_mail(
        "Lee Jieun <jieun@example.kr>", bword("환불 요청", "euc-kr"), "Tue, 31 Mar 2026 14:00:00 +0900",
        "lj-2290@example.kr", text.encode("euc-kr"), "text/plain; charset=UTF-8"),
        "환불 요청", "jieun@example.kr", text)

    html = ("<html><body><p>Dear support,</p><p>the “premium” plan costs €12 – not €15 as you charged.</p>"
            "<p>Regards,<br>Zoë</p></body></html>")
    write(c, "html-declared-utf8-cp1252-body", plain_mail(
        "Zoe Clarke <zoe@example.co.uk>", "Wrong price", "Wed, 1 Apr 2026 09:00:00 +0100", "zc-price@example.co.uk",
        html.encode("cp1252"), "text/html; charset=utf-8"),
        "Wrong price", "zoe@example.co.uk",
        "Dear support,\n\nthe “premium” plan costs €12 – not €15 as you charged.\n\nRegards,\nZoë")

    text = "Добрый день! Когда будет доставка заказа 5512? Заранее спасибо.\nАнна"
    write(c, "latin1-declared-cp1251-body", plain_mail(
        "Anna <anna@example.ru>", "Dostavka 5512", "Thu, 2 Apr 2026 12:30:00 +0300", "an-5512@example.ru",
        text.encode("cp1251"), "text/plain; charset=iso-8859-1"),
        "Dostavka 5512", "anna@example.ru", text)

    text = "請問退貨運費由誰負擔？訂單 TW-8812，商品尺寸不合。\n林先生"
    write(c, "big5-declared-utf8-body", plain_mail(
        "Lin <lin@example.tw>", "=?utf-8?B?%s?=" % base64.b64encode("退貨運費".encode()).decode(),
        "Fri, 3 Apr 2026 16:45:00 +0800", "lin-8812@example.tw", text.encode("big5"), "text/plain; charset=utf-8"),
        "退貨運費", "lin@example.tw", text)


def charset_header():
    c = "charset-header"

    text = "Bonjour,\n\nle colis est arrivé endommagé, le carton était ouvert.\n\nFrançoise"
    write(c, "latin1-raw-subject-and-name", plain_mail(
        "Françoise Lefèvre <f.lefevre@example.fr>".encode("latin-1"), "Réclamation : colis endommagé".encode("latin-1"),
        "Sat, 4 Apr 2026 10:00:00 +0200", "fl-colis@example.fr", quopri.encodestring(text.encode("latin-1")),
        "text/plain; charset=ISO-8859-1", cte="quoted-printable"),
        "Réclamation : colis endommagé", "f.lefevre@example.fr", text)

    text = "Hej,\n\nhvornår bliver min pakke leveret?\n\nSøren"
    write(c, "utf8-raw-headers", plain_mail(
        "Søren Kierkegård <soren@example.dk>".encode(), "Spørgsmål om levering".encode(),
        "Sun, 5 Apr 2026 11:00:00 +0200", "sk-lev@example.dk", text.encode(), "text/plain; charset=utf-8"),
        "Spørgsmål om levering", "soren@example.dk", text)

    body = "附件是发票，请查收。\n\n王芳"
    raw = head("王芳 <wangfang@example.cn>".encode("gbk"), bword("发票", "gb2312"), "Mon, 6 Apr 2026 09:00:00 +0800",
               "wf-inv@example.cn")
    raw += b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"----=_NextPart_000_0001\"\n\n"
    raw += b"This is a multi-part message in MIME format.\n\n------=_NextPart_000_0001\n"
    raw += b"Content-Type: text/plain; charset=\"gb2312\"\nContent-Transfer-Encoding: base64\n\n"
    raw += b64(body.encode("gbk")).encode()
    raw += b"\n------=_NextPart_000_0001\nContent-Type: application/pdf; name=\"" + "发票.pdf".encode("gbk") + b"\"\n"
    raw += b"Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"" + "发票.pdf".encode("gbk") + b"\"\n\n"
    raw += b64(b"%PDF-1.4\n%fake invoice\n").encode() + b"\n------=_NextPart_000_0001--\n"
    write(c, "gbk-raw-name-and-file-name", crlf(raw), "发票", "wangfang@example.cn", body, ["发票.pdf"])

    text = "請求書を再発行していただけますか。\n\n鈴木一郎"
    write(c, "sjis-raw-subject-iso2022jp-body", plain_mail(
        "Suzuki <suzuki@example.jp>", "請求書の再発行".encode("shift_jis"), "Tue, 7 Apr 2026 10:10:00 +0900",
        "suzuki-inv@example.jp", text.encode("iso-2022-jp"), "text/plain; charset=ISO-2022-JP", cte="7bit"),
        "請求書の再発行", "suzuki@example.jp", text)

    text = "Добрый день, пришлите, пожалуйста, счёт на оплату заказа 6630.\n\nСергей"
    write(c, "cp1251-raw-name", plain_mail(
        "Сергей Иванов <sergey@example.ru>".encode("cp1251"), bword("Счёт на оплату", "windows-1251"),
        "Wed, 8 Apr 2026 15:00:00 +0300", "si-6630@example.ru", text.encode("cp1251"),
        "text/plain; charset=windows-1251"),
        "Счёт на оплату", "sergey@example.ru", text)


def charset_declared():
    c = "charset-declared"

    text = "您好：\n\n订单 CN-5566 已经取消了，退款什么时候到账？\n\n刘洋"
    html = "<html><body><div>您好：</div><div><br></div><div>订单 CN-5566 已经取消了，退款什么时候到账？</div><div><br></div><div>刘洋</div></body></html>"
    raw = head("\"=?gb2312?B?%s?=\" <liuyang@example.cn>" % base64.b64encode("刘洋".encode("gbk")).decode(),
               bword("关于退款", "gb2312"), "Thu, 9 Apr 2026 10:00:00 +0800", "202604091000.7731@example.cn",
               "X-Mailer: Foxmail 7.2.25.228[cn]\n")
    raw += b"MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"----=_001_NextPart1\"\n\n"
    raw += b"This is a multi-part message in MIME format.\n\n------=_001_NextPart1\n"
    raw += b"Content-Type: text/plain; charset=\"gb2312\"\nContent-Transfer-Encoding: base64\n\n" + b64(text.encode("gbk")).encode()
    raw += b"\n------=_001_NextPart1\nContent-Type: text/html; charset=\"gb2312\"\nContent-Transfer-Encoding: quoted-printable\n\n"
    raw += quopri.encodestring(html.encode("gbk")) + b"\n------=_001_NextPart1--\n"
    write(c, "gb2312-foxmail-alternative", crlf(raw), "关于退款", "liuyang@example.cn", text)

    text = "請問我的包裹何時會到？已經等了兩個星期。\n\n黃先生"
    write(c, "big5-qp-outlook-express", plain_mail(
        "Huang <huang@example.tw>", bword("包裹何時到", "big5"), "Fri, 10 Apr 2026 09:30:00 +0800",
        "000a01d2$huang@example.tw", quopri.encodestring(text.encode("big5")), "text/plain; charset=\"big5\"",
        cte="quoted-printable", extra="X-Mailer: Microsoft Outlook Express 6.00.2900.5512\n"),
        "包裹何時到", "huang@example.tw", text)

    text = "お世話になります。\n届いた商品のサイズが違いましたので、交換をお願いします。\n\n高橋"
    write(c, "shift-jis-becky", plain_mail(
        "Takahashi <takahashi@example.jp>", bword("商品の交換について", "iso-2022-jp"), "Sat, 11 Apr 2026 13:00:00 +0900",
        "20260411130000.ABCD.takahashi@example.jp", text.encode("shift_jis"), "text/plain; charset=\"Shift_JIS\"",
        extra="X-Mailer: Becky! ver. 2.75.02 [ja]\n"),
        "商品の交換について", "takahashi@example.jp", text)

    text = "안녕하세요.\n계정 비밀번호를 재설정할 수 없습니다. 도와주세요.\n\n박지훈"
    raw = head("=?ks_c_5601-1987?B?%s?= <park.jihoon@example.kr>" % base64.b64encode("박지훈".encode("euc-kr")).decode(),
               "=?ks_c_5601-1987?B?%s?=" % base64.b64encode("비밀번호 재설정".encode("euc-kr")).decode(),
               "Sun, 12 Apr 2026 20:00:00 +0900", "000001d2c3$park@example.kr",
               "X-Mailer: Microsoft Outlook 16.0\n")
    raw += b"MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"----=_NextPart_000_0003_01D2\"\n\n"
    raw += b"------=_NextPart_000_0003_01D2\nContent-Type: text/plain; charset=\"ks_c_5601-1987\"\nContent-Transfer-Encoding: base64\n\n"
    raw += b64(text.encode("euc-kr")).encode()
    raw += b"\n------=_NextPart_000_0003_01D2\nContent-Type: text/html; charset=\"ks_c_5601-1987\"\nContent-Transfer-Encoding: base64\n\n"
    raw += b64(("<html><body><p class=MsoNormal>" + text.replace("\n", "<br>") + "</p></body></html>").encode("euc-kr")).encode()
    raw += b"\n------=_NextPart_000_0003_01D2--\n"
    write(c, "ks-c-5601-outlook", crlf(raw), "비밀번호 재설정", "park.jihoon@example.kr", text)

    text = "Добрый вечер!\nПодскажите, можно ли изменить адрес доставки?\n\nЕлена"
    write(c, "koi8r-thebat", plain_mail(
        "Elena <elena@example.ru>", bword("Адрес доставки", "koi8-r"), "Mon, 13 Apr 2026 21:00:00 +0300",
        "el-addr@example.ru", text.encode("koi8-r"), "text/plain; charset=koi8-r",
        extra="X-Mailer: The Bat! (v9.1.18) Home\n"),
        "Адрес доставки", "elena@example.ru", text)

    text = "Bonjour,\nle prix affiché était 25 € mais j'ai payé 30 €.\n\nAurélie"
    write(c, "iso8859-15-euro", plain_mail(
        "Aurelie <aurelie@example.fr>", qword("Écart de prix", "iso-8859-15"), "Tue, 14 Apr 2026 10:00:00 +0200",
        "au-prix@example.fr", quopri.encodestring(text.encode("iso-8859-15")), "text/plain; charset=ISO-8859-15",
        cte="quoted-printable"),
        "Écart de prix", "aurelie@example.fr", text)

    text = "Dobrý den,\nobjednávka č. 4410 ještě nepřišla. Můžete to prosím ověřit?\n\nPetr Dvořák"
    write(c, "cp1250-czech", plain_mail(
        "=?windows-1250?Q?Petr_Dvo=F8=E1k?= <petr.dvorak@example.cz>", qword("Objednávka 4410", "windows-1250"),
        "Wed, 15 Apr 2026 08:30:00 +0200", "pd-4410@example.cz", quopri.encodestring(text.encode("cp1250")),
        "text/plain; charset=windows-1250", cte="quoted-printable"),
        "Objednávka 4410", "petr.dvorak@example.cz", text)

    text = "Καλησπέρα,\nθα ήθελα να ακυρώσω την παραγγελία μου.\n\nΓιώργος"
    write(c, "iso8859-7-greek", plain_mail(
        "Giorgos <giorgos@example.gr>", bword("Ακύρωση παραγγελίας", "iso-8859-7"), "Thu, 16 Apr 2026 19:00:00 +0300",
        "gp-cancel@example.gr", text.encode("iso-8859-7"), "text/plain; charset=iso-8859-7"),
        "Ακύρωση παραγγελίας", "giorgos@example.gr", text)

    text = "注文をキャンセルしたいです。よろしくお願いします。\n\n中村"
    write(c, "euc-jp", plain_mail(
        "Nakamura <nakamura@example.jp>", bword("キャンセル", "euc-jp"), "Fri, 17 Apr 2026 09:00:00 +0900",
        "nk-cancel@example.jp", text.encode("euc-jp"), "text/plain; charset=EUC-JP"),
        "キャンセル", "nakamura@example.jp", text)


# -------------------------------------------------------------------- MIME

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def mime():
    c = "mime"

    text = "Hello,\n\nmy order 1207 arrived broken.\n\nTom"
    write(c, "first-line-mbox-from", crlf(
        b"From tom@example.org Sat Apr 18 10:00:00 2026\n" +
        head("Tom <tom@example.org>", "Broken order", "Sat, 18 Apr 2026 10:00:00 +0000", "tom-1207@example.org") +
        b"\n" + text.encode()), "Broken order", "tom@example.org", text)

    text = "Hi, the tracking link in your mail does not work.\nSam"
    write(c, "first-line-not-a-header", crlf(
        b"Received from mx.example.org by imap.example.com\n" +
        head("Sam <sam@example.org>", "Tracking link", "Sun, 19 Apr 2026 10:00:00 +0000", "sam-track@example.org") +
        b"\n" + text.encode()), "Tracking link", "sam@example.org", text)

    text = "Good morning, please close my account.\nKate"
    write(c, "bom-and-blank-line-before-header", crlf(
        b"\xef\xbb\xbf\n" +
        head("Kate <kate@example.org>", "Close my account", "Mon, 20 Apr 2026 10:00:00 +0000", "kate-close@example.org") +
        b"\n" + text.encode()), "Close my account", "kate@example.org", text)

    raw = head("Paul <paul@example.org>", "Contract", "Tue, 21 Apr 2026 10:00:00 +0000", "paul-contract@example.org")
    raw += b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n--XX\n\n"
    raw += b"Please find the signed contract attached.\n\nPaul\n--XX\nContent-Type: application/pdf; name=\"contract.pdf\"\n"
    raw += b"Content-Transfer-Encoding: base64\n\n" + b64(PDF).encode() + b"--XX--\n"
    write(c, "part-without-content-type", crlf(raw), "Contract", "paul@example.org",
          "Please find the signed contract attached.\n\nPaul", ["contract.pdf"])

    # Apple Mail: text, an inline image, more text, all in one multipart/mixed.
    raw = head("Julie <julie@example.fr>", "Photos du colis", "Wed, 22 Apr 2026 10:00:00 +0200",
               "5B1E2C3D-1111-2222-3333-444455556666@example.fr",
               "X-Mailer: Apple Mail (2.3774.500.171.1.1)\n")
    raw += b"Mime-Version: 1.0 (Mac OS X Mail 16.0)\nContent-Type: multipart/mixed; boundary=\"Apple-Mail=_A1B2\"\n\n"
    raw += b"--Apple-Mail=_A1B2\nContent-Transfer-Encoding: quoted-printable\nContent-Type: text/plain;\n\tcharset=utf-8\n\n"
    raw += quopri.encodestring("Voici le carton à l'arrivée :".encode()) + b"\n"
    raw += b"--Apple-Mail=_A1B2\nContent-Disposition: inline;\n\tfilename=carton.png\nContent-Type: image/png;\n\tx-unix-mode=0644;\n\tname=\"carton.png\"\nContent-Transfer-Encoding: base64\n\n"
    raw += b64(PNG).encode()
    raw += b"--Apple-Mail=_A1B2\nContent-Transfer-Encoding: quoted-printable\nContent-Type: text/plain;\n\tcharset=utf-8\n\n"
    raw += quopri.encodestring("Et voici l'étiquette. Le colis était ouvert.\n\nJulie".encode()) + b"\n--Apple-Mail=_A1B2--\n"
    write(c, "apple-mail-text-image-text", crlf(raw), "Photos du colis", "julie@example.fr",
          "Voici le carton à l'arrivée :\n\nEt voici l'étiquette. Le colis était ouvert.\n\nJulie", ["carton.png"])

    raw = head("Ben <ben@example.org>", "Three parts", "Thu, 23 Apr 2026 10:00:00 +0000", "ben-3@example.org")
    raw += b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain; charset=us-ascii\n\n"
    raw += b"First, the order number: 7781.\n--b1\nContent-Type: text/html; charset=utf-8\n\n"
    raw += b"<p>Second, the <b>address</b> is 12 Main Street.</p>\n--b1\nContent-Type: text/plain; charset=us-ascii\n\n"
    raw += b"Third, thanks!\n--b1--\n"
    write(c, "mixed-text-html-text", crlf(raw), "Three parts", "ben@example.org",
          "First, the order number: 7781.\n\nSecond, the address is 12 Main Street.\n\nThird, thanks!")

    # Apple Mail with an attachment between two paragraphs of rich text.
    raw = head("Chloe <chloe@example.fr>", "Facture et bon de retour", "Fri, 24 Apr 2026 10:00:00 +0200",
               "A1B2C3D4-0000-1111-2222-333344445555@example.fr", "X-Mailer: Apple Mail (2.3774.500.171.1.1)\n")
    raw += b"Mime-Version: 1.0 (Mac OS X Mail 16.0)\nContent-Type: multipart/alternative; boundary=\"Apple-Mail=_OUT\"\n\n"
    raw += b"--Apple-Mail=_OUT\nContent-Transfer-Encoding: 7bit\nContent-Type: text/plain; charset=us-ascii\n\n"
    raw += b"Bonjour,\n\nvoici la facture :\n\n\nEt le bon de retour rempli.\n\nChloe\n"
    raw += b"--Apple-Mail=_OUT\nContent-Type: multipart/mixed; boundary=\"Apple-Mail=_IN\"\n\n"
    raw += b"--Apple-Mail=_IN\nContent-Transfer-Encoding: 7bit\nContent-Type: text/html; charset=us-ascii\n\n"
    raw += b"<html><body><div>Bonjour,</div><div><br></div><div>voici la facture :</div></body></html>\n"
    raw += b"--Apple-Mail=_IN\nContent-Disposition: inline; filename=facture.pdf\nContent-Type: application/pdf; name=\"facture.pdf\"\nContent-Transfer-Encoding: base64\n\n"
    raw += b64(PDF).encode()
    raw += b"--Apple-Mail=_IN\nContent-Transfer-Encoding: 7bit\nContent-Type: text/html; charset=us-ascii\n\n"
    raw += b"<html><body><div><br></div><div>Et le bon de retour rempli.</div><div><br></div><div>Chloe</div></body></html>\n"
    raw += b"--Apple-Mail=_IN--\n\n--Apple-Mail=_OUT--\n"
    write(c, "apple-mail-alternative-with-mixed-html", crlf(raw), "Facture et bon de retour", "chloe@example.fr",
          "Bonjour,\n\nvoici la facture :\n\nEt le bon de retour rempli.\n\nChloe", ["facture.pdf"])

    raw = head("Jonas <jonas@example.de>", "Unterlagen", "Sat, 25 Apr 2026 10:00:00 +0200", "jonas-doc@example.de")
    raw += b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"c2231\"\n\n--c2231\nContent-Type: text/plain; charset=utf-8\n\n"
    raw += b"Anbei die Unterlagen.\n--c2231\nContent-Type: application/pdf\nContent-Disposition: attachment;\n"
    raw += b" filename*0*=utf-8''%C3%9Cbersicht%20der%20R%C3%BCcksendungen%20;\n filename*1*=%E2%80%93%20M%C3%A4rz;\n filename*2=\" 2026.pdf\"\n"
    raw += b"Content-Transfer-Encoding: base64\n\n" + b64(PDF).encode() + b"--c2231--\n"
    write(c, "rfc2231-continuations", crlf(raw), "Unterlagen", "jonas@example.de", "Anbei die Unterlagen.",
          ["Übersicht der Rücksendungen – März 2026.pdf"])

    raw = head("Ines <ines@example.pt>", "Recibo", "Sun, 26 Apr 2026 10:00:00 +0100", "ines-recibo@example.pt")
    raw += b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"r1\"\n\n--r1\nContent-Type: text/plain; charset=iso-8859-1\n\n"
    raw += "Segue o recibo em anexo.\nInês".encode("latin-1")
    raw += b"\n--r1\nContent-Type: application/pdf\nContent-Disposition: attachment; filename*=iso-8859-1'pt'recibo%20n%BA%2012%20%28c%F3pia%29.pdf\n"
    raw += b"Content-Transfer-Encoding: base64\n\n" + b64(PDF).encode() + b"--r1--\n"
    write(c, "rfc2231-latin1-file-name", crlf(raw), "Recibo", "ines@example.pt", "Segue o recibo em anexo.\nInês",
          ["recibo nº 12 (cópia).pdf"])

    # Outlook: a long encoded name folded over several lines.
    name = "Сводная таблица заказов за первый квартал 2026 года.xlsx"
    nb = name.encode()
    words = "\n ".join("=?utf-8?B?%s?=" % base64.b64encode(nb[i:i + 30]).decode() for i in range(0, len(nb), 30))
    raw = head("Viktor <viktor@example.ru>", "Report", "Mon, 27 Apr 2026 10:00:00 +0300", "vk-report@example.ru",
               "X-Mailer: Microsoft Outlook 16.0\n")
    raw += b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"----=_NextPart_000_0011\"\n\n"
    raw += b"------=_NextPart_000_0011\nContent-Type: text/plain; charset=\"us-ascii\"\nContent-Transfer-Encoding: 7bit\n\n"
    raw += b"Please see the attached report.\n\n"
    raw += ("------=_NextPart_000_0011\nContent-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;\n"
            " name=\"%s\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment;\n filename=\"%s\"\n\n" % (words, words)).encode()
    raw += b64(b"PK\x03\x04fake xlsx").encode() + b"\n------=_NextPart_000_0011--\n"
    write(c, "outlook-folded-encoded-file-name", crlf(raw), "Report", "viktor@example.ru",
          "Please see the attached report.", [name])

    raw = head("Bjorn <bjorn@example.de>", "Rechnung", "Tue, 28 Apr 2026 10:00:00 +0200", "bj-rechnung@example.de")
    raw += b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"l1\"\n\n--l1\nContent-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: 8bit\n\n"
    raw += "Die Rechnung für März ist im Anhang.\nBjörn".encode("latin-1")
    raw += b"\n--l1\nContent-Type: application/pdf; name=\"" + "Rückerstattung März.pdf".encode("latin-1") + b"\"\n"
    raw += b"Content-Disposition: attachment; filename=\"" + "Rückerstattung März.pdf".encode("latin-1") + b"\"\n"
    raw += b"Content-Transfer-Encoding: base64\n\n" + b64(PDF).encode() + b"--l1--\n"
    write(c, "raw-latin1-file-name", crlf(raw), "Rechnung", "bjorn@example.de",
          "Die Rechnung für März ist im Anhang.\nBjörn", ["Rückerstattung März.pdf"])

    # Outlook invitation: the calendar is the third alternative.
    ics = "BEGIN:VCALENDAR\nMETHOD:REQUEST\nBEGIN:VEVENT\nSUMMARY:Call about order 4410\nEND:VEVENT\nEND:VCALENDAR\n"
    raw = head("Marta <marta@example.es>", "Call about order 4410", "Wed, 29 Apr 2026 10:00:00 +0200",
               "marta-call@example.es", "X-Mailer: Microsoft Outlook 16.0\n")
    raw += b"MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"_002_ol\"\n\n"
    raw += b"--_002_ol\nContent-Type: text/plain; charset=\"us-ascii\"\n\nCan we talk about order 4410 on Monday at 10:00?\n"
    raw += b"--_002_ol\nContent-Type: text/html; charset=\"us-ascii\"\n\n<p>Can we talk about order 4410 on Monday at 10:00?</p>\n"
    raw += b"--_002_ol\nContent-Type: text/calendar; charset=\"utf-8\"; method=REQUEST\nContent-Transfer-Encoding: base64\n\n"
    raw += b64(ics.encode()).encode() + b"--_002_ol--\n"
    write(c, "outlook-invitation", crlf(raw), "Call about order 4410", "marta@example.es",
          "Can we talk about order 4410 on Monday at 10:00?", ["invite.ics"])

    raw = head("Leo <leo@example.org>", "Logs", "Thu, 30 Apr 2026 10:00:00 +0000", "leo-logs@example.org")
    raw += b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"lg\"\n\n--lg\nContent-Type: text/plain\n\nThe app crashes at start, logs attached.\n"
    raw += b"--lg\nContent-Type: text/plain; name=\"crash.log\"\nContent-Disposition: inline; filename=\"crash.log\"\n\nFATAL: out of memory\n"
    raw += b"--lg\nContent-Type: application/x-unknown-thing\n\n\x00\x01binary\n--lg--\n"
    write(c, "text-file-and-unnamed-data", crlf(raw), "Logs", "leo@example.org",
          "The app crashes at start, logs attached.", ["crash.log", ""])

    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "Nora <nora@example.no>"
    msg["To"] = TO
    msg["Subject"] = "Skjermbilde av feilen"
    msg["Date"] = "Fri, 1 May 2026 10:00:00 +0200"
    msg["Message-ID"] = "<nora-skjerm@example.no>"
    msg.set_content("Hei,\n\nse skjermbildet under.\n\nNora\n")
    msg.add_alternative('<p>Hei,</p><p>se skjermbildet under.</p><img src="cid:skjerm@example.no"><p>Nora</p>', subtype="html")
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<skjerm@example.no>", filename="skjerm.png",
                                      disposition="inline")
    write(c, "alternative-related-inline-image", msg.as_bytes(), "Skjermbilde av feilen", "nora@example.no",
          "Hei,\n\nse skjermbildet under.\n\nNora")

    raw = head("Omar <omar@example.org>", "Missing body type", "Sat, 2 May 2026 10:00:00 +0000", "omar-x@example.org")
    raw += b"MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"na\"\n\n--na\n\nI cannot log in since the update.\n"
    raw += b"--na\nContent-Type: text/html\n\n<p>I cannot log in since the update.</p>\n--na--\n"
    write(c, "alternative-part-without-content-type", crlf(raw), "Missing body type", "omar@example.org",
          "I cannot log in since the update.")


# -------------------------------------------------------------------- TNEF


def tnef_attr(level, attr_id, data):
    return struct.pack("<BII", level, attr_id, len(data)) + data + struct.pack("<H", sum(data) & 0xffff)


def mapi_props(props):
    """props: (type, id, value bytes) list; variable types get a count."""
    out = struct.pack("<I", len(props))
    for typ, pid, val in props:
        out += struct.pack("<HH", typ, pid)
        if typ in (0x001e, 0x001f, 0x0102):
            out += struct.pack("<II", 1, len(val)) + val + b"\0" * (-len(val) % 4)
        else:
            out += val + b"\0" * (-len(val) % 4)
    return out


def lzfu(rtf):
    """Compressed RTF (MS-OXRTFCP) made of literal runs only: valid, if not
    small. The CRC is computed as the format defines it."""
    body = b""
    for i in range(0, len(rtf), 8):
        body += b"\0" + rtf[i:i + 8]
    # The end marker: a reference to the write position.
    wp = (207 + len(rtf)) % 4096
    body += b"\x01" + struct.pack(">H", wp << 4)
    crc = 0
    for byte in body:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xedb88320 if crc & 1 else 0)
    return struct.pack("<IIII", len(body) + 12, len(rtf), 0x75465a4c, crc) + body


def tnef(body=None, rtf=None, html=None, attachments=(), codepage=1252, truncate=False):
    """A winmail.dat: message attributes, then each attachment as Outlook
    writes it (rendering data, title, data, MAPI properties)."""
    out = struct.pack("<IH", 0x223e9f78, 0x0001)
    out += tnef_attr(1, 0x00089006, struct.pack("<I", 0x00010000))
    out += tnef_attr(1, 0x00069007, struct.pack("<II", codepage, 0))
    out += tnef_attr(1, 0x00078008, b"IPM.Microsoft Mail.Note\0")
    if body is not None:
        out += tnef_attr(1, 0x0002800c, body)
    props = []
    if rtf is not None:
        props.append((0x0102, 0x1009, lzfu(rtf)))
    if html is not None:
        props.append((0x0102, 0x1013, html))
    if props:
        out += tnef_attr(1, 0x00069003, mapi_props(props))
    for a in attachments:
        out += tnef_attr(2, 0x00069002, struct.pack("<HIIHHI", 1, 0xffffffff, 0, 0, 0, 0))
        out += tnef_attr(2, 0x00018010, a["title"] + b"\0")
        out += tnef_attr(2, 0x0006800f, a["data"])
        ap = [(0x0003, 0x3705, struct.pack("<I", a.get("method", 1)))]
        if "long" in a:
            ap.append((0x001f, 0x3707, (a["long"] + "\0").encode("utf-16-le")))
        if "mime" in a:
            ap.append((0x001e, 0x370e, a["mime"].encode() + b"\0"))
        out += tnef_attr(2, 0x00069005, mapi_props(ap))
    return out[:len(out) // 2] if truncate else out


def outlook_tnef_mail(sender, subject, date, msgid, plain, winmail):
    raw = head(sender, subject, date, msgid, "X-Mailer: Microsoft Exchange Server 15.1\n")
    raw += b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"_000_tnef_\"\n\n"
    if plain is not None:
        raw += b"--_000_tnef_\nContent-Type: text/plain; charset=\"us-ascii\"\nContent-Transfer-Encoding: quoted-printable\n\n"
        raw += quopri.encodestring(plain.encode()) + b"\n\n"
    raw += b"--_000_tnef_\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\nContent-Disposition: attachment; filename=\"winmail.dat\"\n"
    raw += b"Content-Transfer-Encoding: base64\n\n" + b64(winmail).encode() + b"\n--_000_tnef_--\n"
    return crlf(raw)


def tnef_mails():
    c = "tnef"
    text = "Hello,\n\nplease find the signed order form and the invoice attached.\n\nRegards,\nPeter Mueller"
    rtf = (b"{\\rtf1\\ansi\\ansicpg1252\\fromtext \\deff0{\\fonttbl{\\f0\\fswiss Arial;}}\r\n"
           b"\\uc1\\pard\\plain\\f0\\fs20 Hello,\\par\r\n\\par\r\nplease find the signed order form and the invoice attached.\\par\r\n"
           b"\\par\r\nRegards,\\par\r\nPeter Mueller\\par\r\n}")
    w = tnef(rtf=rtf, attachments=[
        {"title": b"ORDERF~1.PDF", "long": "Order form signed.pdf", "data": PDF, "mime": "application/pdf"},
        {"title": b"INV-7711.PDF", "long": "INV-7711.pdf", "data": PDF + b"%invoice\n"},
    ])
    write(c, "outlook-text-and-winmail", outlook_tnef_mail(
        "Peter Mueller <peter.mueller@example.de>", "Order form", "Sun, 3 May 2026 10:00:00 +0200",
        "DB6PR0101MB0001@example.de", text, w),
        "Order form", "peter.mueller@example.de", text, ["Order form signed.pdf", "INV-7711.pdf"])

    rtf = (b"{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0\\fswiss Calibri;}}{\\colortbl;\\red0\\green0\\blue0;}\r\n"
           b"{\\*\\generator Riched20 16.0}\\viewkind4\\uc1\\pard\\f0\\fs22 Bonjour,\\par\\par "
           b"la r\\'e9paration n\\'b0 5512 n'est toujours pas termin\\'e9e. Pouvez-vous me dire o\\'f9 elle en est ?\\par\\par "
           b"Cordialement,\\par Andr\\'e9 Lef\\u232?vre\\par}")
    w = tnef(rtf=rtf, attachments=[{"title": b"DEVIS.PDF", "long": "Devis réparation.pdf", "data": PDF}])
    write(c, "rtf-body-only", outlook_tnef_mail(
        "Andre Lefevre <andre.lefevre@example.fr>", "Réparation 5512".encode("latin-1"), "Mon, 4 May 2026 10:00:00 +0200",
        "AM0PR01MB0002@example.fr", None, w),
        "Réparation 5512", "andre.lefevre@example.fr",
        "Bonjour,\n\nla réparation n° 5512 n'est toujours pas terminée. Pouvez-vous me dire où elle en est ?\n\nCordialement,\nAndré Lefèvre",
        ["Devis réparation.pdf"])

    html = b"<html><body><p>Hi team,</p><p>the <b>dashboard</b> shows no data since Friday.</p><p>Anna</p></body></html>"
    w = tnef(html=html, attachments=[{"title": b"DASHBO~1.PNG", "long": "dashboard.png", "data": PNG}])
    write(c, "html-body-only", outlook_tnef_mail(
        "Anna Berg <anna.berg@example.se>", "Dashboard empty", "Tue, 5 May 2026 10:00:00 +0200",
        "HE1PR01MB0003@example.se", None, w),
        "Dashboard empty", "anna.berg@example.se",
        "Hi team,\n\nthe dashboard shows no data since Friday.\n\nAnna", ["dashboard.png"])

    body = "Guten Tag,\r\n\r\nanbei das Formular.\r\n\r\nGrüße\r\nKlaus".encode("cp1252")
    w = tnef(body=body, attachments=[{"title": "Rückgabe.pdf".encode("cp1252"), "data": PDF}])
    write(c, "plain-body-short-names", outlook_tnef_mail(
        "Klaus <klaus@example.de>", "Formular", "Wed, 6 May 2026 10:00:00 +0200",
        "klaus-formular@example.de", "", w),
        "Formular", "klaus@example.de", "Guten Tag,\n\nanbei das Formular.\n\nGrüße\nKlaus", ["Rückgabe.pdf"])

    text = "See the attached spreadsheet.\n\nMaria"
    w = tnef(rtf=b"{\\rtf1\\ansi See the attached spreadsheet.\\par\\par Maria\\par}", attachments=[
        {"title": b"Q1.XLS", "long": "Q1 numbers.xlsx", "data": b"PK\x03\x04fake"}], truncate=True)
    write(c, "damaged-winmail", outlook_tnef_mail(
        "Maria <maria@example.it>", "Numbers", "Thu, 7 May 2026 10:00:00 +0200", "maria-q1@example.it", text, w),
        "Numbers", "maria@example.it", text, ["winmail.dat"])

    text = "Hello, the meeting notes are in the message below.\n\nJohn"
    w = tnef(rtf=b"{\\rtf1\\ansi Hello\\par}", attachments=[
        {"title": b"NOTES.PDF", "long": "notes.pdf", "data": PDF},
        {"title": b"Meeting", "data": b"\x00" * 32, "method": 5},
    ])
    write(c, "embedded-outlook-item", outlook_tnef_mail(
        "John <john@example.org>", "Notes", "Fri, 8 May 2026 10:00:00 +0200", "john-notes@example.org", text, w),
        "Notes", "john@example.org", text, ["notes.pdf", "winmail.dat"])


# --------------------------------------------------------- S/MIME and PGP


def run(args, data=None, env=None):
    return subprocess.run(args, input=data, capture_output=True, check=True, env=env).stdout


def entity(text, attachment=None):
    """The MIME entity a client signs or encrypts."""
    if attachment is None:
        part = MIMEText(text, "plain", "utf-8")
    else:
        part = MIMEMultipart("mixed")
        part.attach(MIMEText(text, "plain", "utf-8"))
        a = MIMEApplication(attachment[1], "pdf")
        a.add_header("Content-Disposition", "attachment", filename=attachment[0])
        part.attach(a)
    del part["MIME-Version"]
    return crlf(part.as_bytes(policy=policy.SMTP))


def with_head(sender, subject, date, msgid, mime_bytes):
    return crlf(head(sender, subject, date, msgid) + b"MIME-Version: 1.0\n") + mime_bytes


def smime(tmp):
    c = "smime"
    key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "3650",
         "-subj", "/CN=Anna Keller/emailAddress=anna.keller@example.ch"])
    who = "Anna Keller <anna.keller@example.ch>"

    def openssl_smime(args, data):
        out = run(["openssl", "smime"] + args, data)
        # openssl writes MIME-Version itself; the mail header is added here.
        return crlf(out.replace(b"MIME-Version: 1.0\n", b"").replace(b"MIME-Version: 1.0\r\n", b""))

    text = "Guten Tag,\n\nich bestätige hiermit die Kündigung meines Vertrags zum 31. Mai.\n\nAnna Keller"
    signed = openssl_smime(["-sign", "-signer", cert, "-inkey", key], entity(text))
    write(c, "clear-signed", with_head(who, "=?utf-8?Q?K=C3=BCndigung?=", "Sat, 9 May 2026 10:00:00 +0200",
                                       "ak-kuend@example.ch", signed),
          "Kündigung", "anna.keller@example.ch", text)

    text = "Hello,\n\nthe signed statement is below: I did not receive order 8890.\n\nAnna"
    signed = openssl_smime(["-sign", "-nodetach", "-signer", cert, "-inkey", key], entity(text))
    write(c, "opaque-signed", with_head(who, "Statement", "Sun, 10 May 2026 10:00:00 +0200", "ak-stmt@example.ch", signed),
          "Statement", "anna.keller@example.ch", text)

    text = "My bank details for the refund are attached."
    enc = openssl_smime(["-encrypt", "-aes256", cert], entity(text))
    write(c, "encrypted", with_head(who, "Bank details", "Mon, 11 May 2026 10:00:00 +0200", "ak-bank@example.ch", enc),
          "Bank details", "anna.keller@example.ch",
          "[Encrypted message (S/MIME): the content is attached, it cannot be read here]", ["smime.p7m"])

    text = "Attached is the signed delivery note.\n\nAnna"
    signed = openssl_smime(["-sign", "-signer", cert, "-inkey", key], entity(text, ("lieferschein.pdf", PDF)))
    write(c, "clear-signed-with-attachment", with_head(who, "Lieferschein", "Tue, 12 May 2026 10:00:00 +0200",
                                                       "ak-ls@example.ch", signed),
          "Lieferschein", "anna.keller@example.ch", text, ["lieferschein.pdf"])

    text = "Signed and encrypted: my new address is Bahnhofstrasse 1, Zürich."
    signed = openssl_smime(["-sign", "-signer", cert, "-inkey", key], entity(text))
    enc = openssl_smime(["-encrypt", "-aes256", cert], signed)
    write(c, "signed-then-encrypted", with_head(who, "New address", "Wed, 13 May 2026 10:00:00 +0200",
                                                "ak-addr@example.ch", enc),
          "New address", "anna.keller@example.ch",
          "[Encrypted message (S/MIME): the content is attached, it cannot be read here]", ["smime.p7m"])

    text = "Opaque signed, from an old client, with a PDF.\n\nAnna"
    signed = openssl_smime(["-sign", "-nodetach", "-signer", cert, "-inkey", key], entity(text, ("scan.pdf", PDF)))
    write(c, "opaque-signed-with-attachment", with_head(who, "Scan", "Thu, 14 May 2026 10:00:00 +0200",
                                                        "ak-scan@example.ch", signed),
          "Scan", "anna.keller@example.ch", text, ["scan.pdf"])


def pgp(tmp):
    c = "pgp"
    home = os.path.join(tmp, "gnupg")
    os.makedirs(home, mode=0o700)
    env = dict(os.environ, GNUPGHOME=home)
    uid = "Lars Nilsson <lars.nilsson@example.se>"
    run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "rsa2048", "sign,encrypt", "never"], env=env)
    gpg = ["gpg", "--batch", "--yes", "--armor", "--trust-model", "always"]

    def signed_mail(subject, date, msgid, part):
        sig = run(gpg + ["--detach-sign", "--digest-algo", "SHA256"], part, env=env)
        raw = head(uid, subject, date, msgid, "User-Agent: Mozilla Thunderbird\n")
        raw += (b"MIME-Version: 1.0\nContent-Type: multipart/signed; micalg=pgp-sha256;\n protocol=\"application/pgp-signature\";"
                b" boundary=\"------------sig1\"\n\nThis is an OpenPGP/MIME signed message (RFC 4880 and 3156)\n--------------sig1\n")
        raw = crlf(raw) + part + crlf(b"\n--------------sig1\nContent-Type: application/pgp-signature; name=\"OpenPGP_signature.asc\"\n"
                                      b"Content-Description: OpenPGP digital signature\nContent-Disposition: attachment; filename=\"OpenPGP_signature.asc\"\n\n")
        return raw + crlf(sig) + b"\r\n--------------sig1--\r\n"

    text = "Hej,\n\njag vill byta leveransadress för order 3301.\n\nLars"
    write(c, "mime-signed", signed_mail("Leveransadress", "Fri, 15 May 2026 10:00:00 +0200", "ln-adr@example.se",
                                        entity(text)),
          "Leveransadress", "lars.nilsson@example.se", text)

    text = "The signed receipt is attached.\n\nLars"
    write(c, "mime-signed-with-attachment", signed_mail("Receipt", "Sat, 16 May 2026 10:00:00 +0200", "ln-rcpt@example.se",
                                                        entity(text, ("kvitto.pdf", PDF))),
          "Receipt", "lars.nilsson@example.se", text, ["kvitto.pdf"])

    inner = entity("My password reset code is 771204.")
    armored = run(gpg + ["--encrypt", "--recipient", "lars.nilsson@example.se"], inner, env=env)
    raw = head(uid, "Private", "Sun, 17 May 2026 10:00:00 +0200", "ln-priv@example.se", "User-Agent: Mozilla Thunderbird\n")
    raw += (b"MIME-Version: 1.0\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"enc1\"\n\n"
            b"This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\n--enc1\nContent-Type: application/pgp-encrypted\n"
            b"Content-Description: PGP/MIME version identification\n\nVersion: 1\n\n--enc1\n"
            b"Content-Type: application/octet-stream; name=\"encrypted.asc\"\nContent-Description: OpenPGP encrypted message\n"
            b"Content-Disposition: inline; filename=\"encrypted.asc\"\n\n") + armored + b"\n--enc1--\n"
    write(c, "mime-encrypted", crlf(raw), "Private", "lars.nilsson@example.se",
          "[Encrypted message (PGP): the content is attached, it cannot be read here]", ["encrypted.asc"])

    text = "Hello,\n\nplease cancel my subscription.\n- Lars\n\n-- \nLars Nilsson"
    clear = run(gpg + ["--clearsign", "--digest-algo", "SHA256"], text.encode(), env=env)
    write(c, "inline-signed", plain_mail(uid, "Cancel subscription", "Mon, 18 May 2026 10:00:00 +0200",
                                         "ln-cancel@example.se", clear, "text/plain; charset=utf-8"),
          "Cancel subscription", "lars.nilsson@example.se", text)

    text = "Bonjour,\n\nvoici ma réclamation signée.\n\nLars"
    clear = run(gpg + ["--clearsign", "--digest-algo", "SHA256"], text.encode(), env=env)
    body = b"Sent from my phone with a PGP app:\n\n" + clear + b"\nThanks for your help.\n"
    write(c, "inline-signed-with-text-around", plain_mail(uid, "Reclamation", "Tue, 19 May 2026 10:00:00 +0200",
                                                          "ln-recl@example.se", body, "text/plain; charset=utf-8"),
          "Reclamation", "lars.nilsson@example.se",
          "Sent from my phone with a PGP app:\n\n" + text + "\n\nThanks for your help.")


def main():
    charset_undeclared()
    charset_wrong()
    charset_header()
    charset_declared()
    mime()
    tnef_mails()
    with tempfile.TemporaryDirectory() as tmp:
        smime(tmp)
        pgp(tmp)


if __name__ == "__main__":
    sys.exit(main())
