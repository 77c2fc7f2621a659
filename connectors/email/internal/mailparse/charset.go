package mailparse

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gogs/chardet"
	"github.com/jhillyerd/enmime/v2"
	"github.com/jhillyerd/enmime/v2/mediatype"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// Charsets are this package's, not enmime's: enmime is handed every text
// part as UTF-8 (see passCharsets) and passes its bytes through, and the
// charsets type below decodes them. The fast path is a declared (or
// default) charset that decodes the bytes cleanly, or pure ASCII; only
// when the declaration is missing on 8-bit bytes, unknown, or does not fit
// (invalid sequences, or text that cannot be what was declared) is the
// charset detected, and the warning says which one was used.

// cset is a charset this package can decode.
type cset struct {
	// name is the WHATWG name, lowercase: "utf-8", "windows-1252",
	// "gbk", "shift_jis".
	name string
	// enc decodes; nil for UTF-8.
	enc encoding.Encoding
}

var utf8Charset = cset{name: "utf-8"}

// extraLabels are labels mail clients write that the WHATWG index lacks.
var extraLabels = map[string]cset{
	"cp936":         {"gbk", simplifiedchinese.GBK},
	"ms936":         {"gbk", simplifiedchinese.GBK},
	"gb_2312":       {"gbk", simplifiedchinese.GBK},
	"cp949":         {"euc-kr", korean.EUCKR},
	"ms949":         {"euc-kr", korean.EUCKR},
	"uhc":           {"euc-kr", korean.EUCKR},
	"cp950":         {"big5", traditionalchinese.Big5},
	"ms950":         {"big5", traditionalchinese.Big5},
	"cp932":         {"shift_jis", japanese.ShiftJIS},
	"iso-2022-jp-2": {"iso-2022-jp", japanese.ISO2022JP},
	"cp850":         {"ibm850", charmap.CodePage850},
	"ibm850":        {"ibm850", charmap.CodePage850},
	"cp437":         {"ibm437", charmap.CodePage437},
	"ibm437":        {"ibm437", charmap.CodePage437},
}

// asciiLabels declare US-ASCII: 8-bit bytes under them are undeclared.
var asciiLabels = map[string]bool{"us-ascii": true, "ascii": true, "ansi_x3.4-1968": true, "iso646-us": true, "us": true, "7bit": true}

// normLabel cleans a declared charset label: quotes, spaces, a repeated
// "charset=", an RFC 2231 language suffix.
func normLabel(label string) string {
	l := strings.ToLower(strings.Trim(strings.TrimSpace(label), `"' `))
	l = strings.TrimPrefix(l, "charset=")
	if i := strings.IndexAny(l, "*; "); i >= 0 {
		l = l[:i]
	}
	return strings.Trim(l, `"'`)
}

// lookupCharset returns the charset of a label, and whether it is known.
// US-ASCII labels are not known here: they declare nothing about 8-bit
// bytes.
func lookupCharset(label string) (cset, bool) {
	l := normLabel(label)
	if l == "" || asciiLabels[l] {
		return cset{}, false
	}
	if cs, ok := extraLabels[l]; ok {
		return cs, true
	}
	e, err := htmlindex.Get(l)
	if err != nil {
		return cset{}, false
	}
	name, err := htmlindex.Name(e)
	if err != nil || name == "replacement" || name == "x-user-defined" {
		return cset{}, false
	}
	if name == "utf-8" {
		return utf8Charset, true
	}
	// The WHATWG index decodes ISO-8859-1 as Windows-1252, as mail
	// clients do: the C1 range holds the euro sign and curly quotes.
	return cset{name: name, enc: e}, true
}

// singleByte reports whether cs maps every byte to a character.
func (cs cset) singleByte() bool {
	switch {
	case cs.enc == nil:
		return false
	case strings.HasPrefix(cs.name, "windows-125"), strings.HasPrefix(cs.name, "iso-8859-"),
		strings.HasPrefix(cs.name, "koi8"), strings.HasPrefix(cs.name, "ibm"),
		cs.name == "macintosh", cs.name == "x-mac-cyrillic":
		return true
	}
	return false
}

// latinScript reports whether cs is a single-byte charset for a Latin
// alphabet, whose text is mostly ASCII letters.
func (cs cset) latinScript() bool {
	switch cs.name {
	case "windows-1250", "windows-1252", "windows-1254", "windows-1257", "windows-1258", "macintosh", "ibm850", "ibm437":
		return true
	case "iso-8859-2", "iso-8859-3", "iso-8859-4", "iso-8859-10", "iso-8859-13", "iso-8859-14", "iso-8859-15", "iso-8859-16":
		return true
	}
	return false
}

// decodeWith decodes b with cs and counts the bytes that did not decode.
func decodeWith(cs cset, b []byte) (string, int) {
	if cs.enc == nil {
		if utf8.Valid(b) {
			return string(b), 0
		}
		bad := 0
		for i := 0; i < len(b); {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				bad++
			}
			i += n
		}
		return strings.ToValidUTF8(string(b), "\uFFFD"), bad
	}
	out, err := cs.enc.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD"), len(b)
	}
	// The decoders write U+FFFD for what they cannot decode; the legacy
	// charsets have no U+FFFD of their own.
	return string(out), strings.Count(string(out), "\uFFFD")
}

// charsets decodes the text of one mail. Its hints, the charsets the mail
// declares anywhere, and its sample, the 8-bit text it leaves undeclared,
// are gathered only when a text needs detecting.
type charsets struct {
	root *enmime.Part

	gathered bool
	hints    []cset
	sample   []byte
	// sampleResults is chardet's reading of sample, once needed.
	sampleResults []chardet.Result
}

// maxDetectBytes bounds what the detector reads of one text, and
// maxSampleBytes the sample of undeclared text of a mail.
const (
	maxDetectBytes = 64 << 10
	maxSampleBytes = 16 << 10
)

func newCharsets(root *enmime.Part) *charsets { return &charsets{root: root} }

// decode returns b, declared as label ("" when nothing is declared), as
// UTF-8. what names the text in warnings, such as "Subject" or "text part
// 1.2"; html tells the detector to skip markup.
func (c *charsets) decode(b []byte, label string, html bool, what string, w *warnings) string {
	declared, known := lookupCharset(label)
	if l := normLabel(label); l != "" && !known && !asciiLabels[l] {
		w.add(fmt.Sprintf("%s: unknown charset %q", what, truncateUTF8(l, 64)))
	}
	if isASCIIBytes(b) {
		switch {
		case known && (declared.name == "iso-2022-jp" || strings.HasPrefix(declared.name, "utf-16")):
			// Not ASCII-compatible: 7-bit bytes are not ASCII text.
			s, _ := decodeWith(declared, b)
			return s
		case !known && has2022Escape(b):
			// Undeclared ISO-2022-JP: its escapes give it away.
			if s, bad := decodeWith(cset{"iso-2022-jp", japanese.ISO2022JP}, b); bad == 0 {
				w.add(what + ": no charset declared, decoded as iso-2022-jp (detected)")
				return s
			}
		}
		return string(b)
	}
	if !known && utf8.Valid(b) {
		// Undeclared UTF-8, as 8BITMIME clients send it.
		return string(b)
	}
	if cs := declared; known || hasMultiByteRune(string(b)) {
		if !known {
			cs = utf8Charset
		}
		s, bad := decodeWith(cs, b)
		if bad == 0 && !misdeclared(cs, b, s) {
			return s
		}
		if bad > 0 && damaged(cs, b, s, bad, known) {
			// Unless a multi-byte charset fits for sure: its bytes
			// form valid sequences of other charsets by chance.
			alt, how, conf := c.detect(b, html, !known, cs)
			if conf < 50 || alt.enc == nil || alt.singleByte() {
				w.add(fmt.Sprintf("%s: %d bytes invalid in %s replaced", what, bad, cs.name))
				return s
			}
			alts, _ := decodeWith(alt, b)
			w.add(fmt.Sprintf("%s: declared charset %s does not fit, decoded as %s (%s)", what, labelOr(label, cs.name), alt.name, how))
			return alts
		}
	}
	cs, how, _ := c.detect(b, html, !known, declared)
	s, _ := decodeWith(cs, b)
	switch {
	case known:
		w.add(fmt.Sprintf("%s: declared charset %s does not fit, decoded as %s (%s)", what, normLabel(label), cs.name, how))
	default:
		w.add(fmt.Sprintf("%s: no charset declared, decoded as %s (%s)", what, cs.name, how))
	}
	return s
}

// damaged reports whether b, in which bad bytes do not decode as cs into
// s, is text in cs with some damage (a cut, a stray byte) rather than text
// in another charset: UTF-8 with at least one valid multi-byte sequence
// for four invalid bytes when declared (for each invalid byte when not:
// bytes of other charsets form some by chance), another charset with ten
// good characters outside ASCII for each bad byte.
func damaged(cs cset, b []byte, s string, bad int, declared bool) bool {
	good := 0
	if cs.enc == nil {
		for i := 0; i < len(b); {
			r, n := utf8.DecodeRune(b[i:])
			if n > 1 && r != utf8.RuneError {
				good++
			}
			i += n
		}
		if declared {
			return good*4 >= bad
		}
		return good >= bad
	}
	for _, r := range s {
		if r >= utf8.RuneSelf && r != utf8.RuneError {
			good++
		}
	}
	return good >= 10*bad
}

// labelOr returns the declared label as written (cleaned), else name.
func labelOr(label, name string) string {
	if l := normLabel(label); l != "" {
		return l
	}
	return name
}

// misdeclared reports whether b, which decodes cleanly as cs into s, is
// nevertheless not in cs: UTF-8 under a single-byte label, or text whose
// letters are not what a text in cs has. Only single-byte charsets decode
// anything, so only they are checked.
func misdeclared(cs cset, b []byte, s string) bool {
	if !cs.singleByte() {
		return false
	}
	if utf8.Valid(b) && hasMultiByteRune(string(b)) {
		return true
	}
	var letters, high, upper int
	for _, r := range s {
		if !unicode.IsLetter(r) {
			continue
		}
		letters++
		if r >= utf8.RuneSelf {
			high++
			if unicode.IsUpper(r) {
				upper++
			}
		}
	}
	if letters < 8 {
		return false
	}
	// Cyrillic written in KOI8-R read as Windows-1251 (or back) comes out
	// in capitals; Russian or Chinese read as Latin-1 is a run of
	// accented letters, where French or Polish has a few.
	return high >= 8 && upper*10 > high*6 || cs.latinScript() && high*10 > letters*4
}

// detect finds the charset of b, which the declared charset (if any, and
// excluded) does not decode; undeclared says none is, so that b is part
// of the mail's sample. It says how it found it, and how sure it is
// (chardet's confidence, 100 for a charset the mail declares elsewhere).
func (c *charsets) detect(b []byte, html, undeclared bool, excluded cset) (cset, string, int) {
	if utf8.Valid(b) {
		return utf8Charset, "detected", 100
	}
	c.gather()
	for _, h := range c.hints {
		if h.name == excluded.name || h.enc == nil {
			continue
		}
		if s, bad := decodeWith(h, b); bad == 0 && !misdeclared(h, b, s) {
			return h, "declared elsewhere in the mail", 100
		}
	}
	var results []chardet.Result
	if (undeclared || count8bit(b) < 64) && len(c.sample) > 0 {
		// A subject or a name is too short to tell Chinese from Korean;
		// what the mail leaves undeclared all together tells more, and
		// is read once for all its texts.
		if c.sampleResults == nil {
			c.sampleResults, _ = chardet.NewTextDetector().DetectAll(c.sample)
		}
		results = c.sampleResults
	} else {
		det := chardet.NewTextDetector()
		if html {
			det = chardet.NewHtmlDetector()
		}
		results, _ = det.DetectAll(b[:min(len(b), maxDetectBytes)])
	}
	best, bestScore, conf := cset{name: "windows-1252", enc: charmap.Windows1252}, -1.0, 0
	for _, r := range results {
		cs, ok := lookupCharset(r.Charset)
		if !ok || cs.enc == nil || cs.name == excluded.name || strings.HasPrefix(cs.name, "utf-16") {
			continue
		}
		cs = withC1(cs, b)
		s, bad := decodeWith(cs, b)
		if bad > 0 {
			continue
		}
		// chardet tells long texts apart; for short ones, where it
		// gives every multi-byte charset the same low confidence, the
		// plausibility of the decoded text decides.
		score := float64(r.Confidence) + 40*plausibility(s)
		if score > bestScore {
			best, bestScore, conf = cs, score, r.Confidence
		}
	}
	return best, "detected", conf
}

// isoWindows maps ISO-8859 charsets to the Windows code page of the same
// alphabet.
var isoWindows = map[string]string{"iso-8859-2": "windows-1250", "iso-8859-7": "windows-1253", "iso-8859-8": "windows-1255", "iso-8859-6": "windows-1256", "iso-8859-9": "windows-1254", "iso-8859-13": "windows-1257"}

// withC1 returns the Windows code page for an ISO-8859 charset when b
// uses the C1 range, which ISO-8859 leaves to control characters and
// Windows fills with letters and quotes.
func withC1(cs cset, b []byte) cset {
	windows := isoWindows[cs.name]
	if windows == "" {
		return cs
	}
	for _, c := range b {
		if c >= 0x80 && c < 0xa0 {
			if w, ok := lookupCharset(windows); ok {
				return w
			}
		}
	}
	return cs
}

// plausibility scores how much s reads like text, from -1 to 1: common
// CJK characters, kana, common Hangul and lowercase letters count for it;
// control characters, private use and stray symbols against it.
func plausibility(s string) float64 {
	var n, score float64
	for _, r := range s[:min(len(s), maxDetectBytes)] {
		if r < utf8.RuneSelf {
			continue
		}
		n++
		switch {
		case r == utf8.RuneError, r < 0xa0, r >= 0xe000 && r <= 0xf8ff:
			score--
		case r >= 0x3040 && r <= 0x30ff: // kana
			score++
		case r >= 0x3000 && r <= 0x303f, r >= 0xff01 && r <= 0xff5e: // CJK punctuation, full width forms
			score += 0.5
		case r >= 0x4e00 && r <= 0x9fff, r >= 0xac00 && r <= 0xd7a3:
			if _, ok := commonCJKSet[r]; ok {
				score++
			}
		case r >= 0xff61 && r <= 0xff9f: // half-width katakana, rare in mail
		case unicode.IsLower(r):
			score++
		case unicode.IsUpper(r):
			score += 0.3
		case unicode.IsLetter(r):
		default:
			score -= 0.5
		}
	}
	if n == 0 {
		return 0
	}
	return score / n
}

// commonCJK holds the commonest characters of Chinese (simplified and
// traditional), Japanese kanji and Korean Hangul in customer mail. It only
// breaks ties between charsets a short text decodes in.
const commonCJK = "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实日者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应向头文体相见被利什二等产或新己制身果加西月话合回特代内信表化老给世位次度门任常先海通教原东声提立及比员解水名真论处走义各入几口认条平系气题活更别打女变四总何电数安少报才结反受目太量再感建务做接必场件计管期市直资命金指许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边张该交规万取拉格望觉术领共确传观清今切院让识候带导争运笑改收根干造言联持组每济车亲极林服快办议往元士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备连调深商算质团集百需价花华城石级整府离况请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎查轻易早曾除农找装广显吧李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列红响虽推势参希古众构房半节土投某案黑维划致律足态护七派孩验责营星够章音跟志底站严例防族供效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举父苏密低朝友诉止细愿千值仍男钱破网热助倒育属坐限船脸职速刻乐否刚威状率甚独球般普怕校苦创假久错承印晚试股拿脑预谁益阳若哪微继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财环排福纳欢警获模充负云停木游树疑层冷射略范竟句室异激村策演简卡罪判担州静退既衣您宗积余痛检差富灵协角占配征修皮胜降阶审坚善妈读啊超免压银买养怀执副乱犯追帮宣佛岁航优怪香著田铁控税左右份穿艺背草脚概恶块顿敢守酒岛托央户烈洋哥索款靠评版宝座释景顾弟登货互付慢换闻危忙核暗姐介坏讨丽良序升监临亮露永呼味野架域沙掉括鱼杂误湾吉减编楚肯测败屋跑梦散温困渐封救贵缺楼县尚毫移朋画班智亦耳恩短掌恐遗固席松秘谢遇康虑幸均销钟诗藏赶剧票损忽巨旧端探湖录叶春乡附吸予礼港雨呀板庭妇归睛饭额含顺输摇招婚脱补督油疗旅材灭逐笔亡鲜词择寻厂睡博烟授诺岸唐卖载健堂旁宫喝借君禁园避抓荣姑孙逃牙束跳顶玉镇雪午练迫肉嘴馆遍凡础洞卷坦牛宁纸诸训私庄祖丝翻暴森塔默握戏隐熟骨访弱歌店软典欲伙遭盘爸扩盖弄稳忘亿刺拥杨齐赛趣曲刀床迎冰虚玩析窗醒妻透购替努休扬途刑绿兄迅套贸毕唯谷轮库迹街促延震甲伟麻申缓潜闪售灯针哲络抵朱抱鼓植纯夏忍页杰筑折郑贝尊吴秀混雅振染盛怒舞圆搞狂措姓残秋培迷诚宽宇猛摆梅毁伸摩末乃悲拍丁赵硬麦操阻订彩抽赞纷沿喊违妹浪汇币丰蓝殊献桌啦瓦援译夺汽烧距裁偏符勇触课敬哭懂墙召罚厅拜巧侧韩冒债融惯享戴童犹乘挂奖绍厚纵障讯涉彻刊丈爆役描洗患妙镜唱烦签仙彼症仿倾牌陷鸟菜闭奋庆撤泪茶疾缘播朗杜奶季丹狗尾仪偷奔珠虫驻孔宜艾桥淡翼恨繁寒伴叹旦愈潮粮缩罢聚径恰挑袋灰捕徐珍幕映裂泰隔启尖忠累炎暂估泛荒偿横拒瑞忆孤鼻闹羊呆厉衡胞零穷舍码婆魂灾洪腿胆津俗辩胸晓劲贫仁偶辑邦恢赖圈摸仰润堆碰艇稍迟辆废净凶署壁御奉旋冬矿抬蛋晨伏吹鸡倍糊盾杯租骑乏隆诊奴摄丧污渡旗甘耐凭扎抢绪粗肩梁幻菲皆碎叔岩荡综爬荷悉返井壮薄悄扫敏碍殖详迪矛允幅撒剩凯颗骂赏液番箱贴漫酸腰舒眉忧浮辛恋餐吓挺励辞键伍峰尺昨辈贯侦滑券崇扰宪绕趋慈阅汗枝拖墨胁插箭腊粉泥氏彭拔骗凤慧媒佩愤扑龄驱惜豪掩兼跃尸肃驶堡届欣惠册储飘桑闲惨洁踪勃宾频仇磨递邪撞拟滚奏巡颜剂绩贡疯坡瞧截燃焦殿伪柳锁逼颇昏劝呈搜勤戒驾漂饮曹朵仔柔俩孟腐幼践籍牧凉牲佳娜浓芳稿竹腹跌逻垂遵脉貌柏狱猜怜惑陶兽帐饰贷昌叙躺钢沟寄扶铺邓寿惧询汤盗肥尝匆辉奈扣廷澳嘛董迁凝慰厌脏腾幽怨鞋丢埋泉涌辖躲晋紫艰魏吾慌祝邮吐狠鉴械咬邻赤挤弯椅陪割揭韦悟聪雾锋梯猫祥阔誉筹丛牵鸣沈阁穆屈旨袖猎臂蛇贺柱抛鼠瑟牢逊迈欺吨琴衰瓶恼燕仲诱狼池疼卢仗冠粒遥吕玄尘冯抚浅敦纠钻晶岂峡苍喷耗凌敲菌赔涂粹扁亏寂煤熊恭湿循暖糖赋抑秩帽哀宿踏烂袁侯抖夹昆肝擦猪炼恒慎搬纽纹玻渔磁铜齿跨押怖漠疲叛遣兹祭醉拳弥斜档稀捷肤疫肿豆削岗晃吞宏癌肚隶履涨耀扭坛拨沃绘伐堪仆郭牺歼墓雇廉契拼惩捉覆刷劫嫌瓜歇雕闷乳串娃缴唤赢莲霸桃妥瘦搭赴岳嘉舱俊址庞耕锐缝悔邀玲惟斥宅添挖呵讼氧浩羽斤酷掠妖祸侍乙妨贪挣汪尿莉悬唇翰仓轨枚盐览傅帅庙芬屏寺胖璃愚滴疏萧姿颤丑劣柯寸扔盯辱匹俱辨饿蜂哦腔郁溃谨糟葛苗肠忌溜鸿爵鹏鹰笼丘桂滋聊挡纲肌茨壳痕碗穴膀卓贤卧膜毅锦欠哩函茫昂薛皱夸豫胃舌剥傲拾窝睁携陵哼棉晴铃填饲渴吻扮逆脆喘罩卜炉柴愉绳胎蓄眠竭喂傻慕浑奸扇柜悦拦诞饱乾泡贼亭夕爹酬儒姻卵氛泄杆挨僧蜜吟遂狭肖甜霞驳裕顽於摘矮秒卿畜咽披辅勾盆疆赌塑畏吵囊嗯泊肺骤缠冈羞瞪吊贾漏斑涛悠鹿俘锡卑葬铭滩嫁催" +
	// Traditional forms and Japanese kanji not above.
	"這們來為國說時會對過發後裡經麼學現當動進點實業間問從種兩長樣還與開關機將員從號寫請貨單訂謝詢題收務處理應該電郵寄償換認識網頁買賣價錢額費運輸送達變讓覺聯係繫係傳給錯誤嗎幫助話這個樣話詳細確認連絡様願申込届返品交換注文配送遅延確認致候頂戴御座誠恐縮件担当申訳記載内容変更予定期間手続払戻領収書発送到着状況" +
	// Hangul.
	"이다는의에가을를고하지한서기사있로요니습도나면세것들어수해보안녕주문상품아직착않았배송확인부탁드립감합시자으은과와라리대제우게정일전국만여내중회계무오구생동성소원장미받되할경개신분때위마저희께려번호환불취결금액연락처빠른답변드립니까님고객센터반품교환문의사항감사요청드려주세요빨리처리해주시기바랍니다제품파손되었습니다"

// commonCJKSet holds the runes of commonCJK.
var commonCJKSet = func() map[rune]struct{} {
	set := make(map[rune]struct{}, len(commonCJK)/3)
	for _, r := range commonCJK {
		set[r] = struct{}{}
	}
	return set
}()

// gather finds the mail's hints and sample, once.
func (c *charsets) gather() {
	if c.gathered {
		return
	}
	c.gathered = true
	seen := map[string]bool{}
	addHint := func(label string) {
		if cs, ok := lookupCharset(label); ok && !seen[cs.name] {
			seen[cs.name] = true
			c.hints = append(c.hints, cs)
		}
	}
	var sample bytes.Buffer
	_ = c.root.DepthMatchAll(func(part *enmime.Part) bool {
		if label := declaredCharset(part); label != "" {
			addHint(label)
		} else if strings.HasPrefix(part.ContentType, "text/") || part.ContentType == "" {
			if count8bit(part.Content) > 0 && sample.Len() < maxSampleBytes {
				sample.Write(part.Content)
				sample.WriteByte(' ')
			}
		}
		return false
	})
	for _, name := range []string{"Subject", "From", "To", "Cc", "Reply-To"} {
		for _, v := range c.root.Header.Values(name) {
			for _, label := range wordCharsets(v) {
				addHint(label)
			}
			if count8bit([]byte(v)) > 0 {
				sample.WriteString(v)
				sample.WriteByte(' ')
			}
		}
	}
	c.sample = sample.Bytes()[:min(sample.Len(), maxSampleBytes)]
}

// declaredCharset returns the charset parameter of a part's Content-Type,
// as the sender wrote it: enmime's copy says UTF-8 (see passCharsets).
func declaredCharset(part *enmime.Part) string {
	ct := part.Header.Get("Content-Type")
	if ct == "" || !strings.Contains(strings.ToLower(ct), "charset") {
		return ""
	}
	_, params, _, err := mediatype.Parse(ct)
	if err != nil {
		return ""
	}
	return params["charset"]
}

// passCharsets is enmime's media type parser with the charset of every
// text part replaced by UTF-8, which enmime passes through: decoding is
// this package's (see charsets), and enmime's own detection, which runs on
// every text part, is skipped.
func passCharsets(ctype string) (string, map[string]string, []string, error) {
	mtype, params, invalid, err := mediatype.Parse(ctype)
	if err == nil && strings.HasPrefix(mtype, "text/") {
		params["charset"] = "utf-8"
	}
	return mtype, params, invalid, err
}

func isASCIIBytes(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func count8bit(b []byte) int {
	n := 0
	for _, c := range b {
		if c >= utf8.RuneSelf {
			n++
		}
	}
	return n
}

// has2022Escape reports whether 7-bit b switches to JIS X 0208, as
// ISO-2022-JP does.
func has2022Escape(b []byte) bool {
	return bytes.Contains(b, []byte("\x1b$B")) || bytes.Contains(b, []byte("\x1b$@"))
}

// header decodes a header value: raw 8-bit bytes in the charset the mail
// uses, then RFC 2047 encoded words, each in its declared charset unless
// it does not fit.
func (c *charsets) header(raw, what string, w *warnings) string {
	if !utf8.ValidString(raw) {
		raw = c.decode([]byte(raw), "", false, what, w)
	}
	if !strings.Contains(raw, "=?") {
		return raw
	}
	return c.words(raw, what, w, nil)
}

// addressHeader prepares an address header for enmime.ParseAddressList:
// raw 8-bit bytes are decoded, and encoded words are decoded here and
// encoded again as UTF-8, so that an encoded comma stays in its name while
// the charset is this package's.
func (c *charsets) addressHeader(raw, what string, w *warnings) string {
	if !utf8.ValidString(raw) {
		raw = c.decode([]byte(raw), "", false, what, w)
	}
	if !strings.Contains(raw, "=?") {
		return raw
	}
	return c.words(raw, what, w, func(s string) string {
		// Always encoded, even when ASCII: "Doe, John" must stay a word.
		return "=?utf-8?b?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
	})
}

// words decodes the RFC 2047 encoded words of s. Adjacent words are joined
// (the white space between them is not text), and so are their bytes when
// they share a charset, for senders that cut a character in two. A
// malformed word stays as it is. emit, when set, rewrites each decoded run.
func (c *charsets) words(s, what string, w *warnings, emit func(string) string) string {
	var out strings.Builder
	var run []byte
	runLabel := ""
	flush := func() {
		if runLabel == "" {
			return
		}
		d := c.decode(run, runLabel, false, what, w)
		if emit != nil {
			d = emit(d)
		}
		out.WriteString(d)
		run, runLabel = run[:0], ""
	}
	for s != "" {
		i := strings.Index(s, "=?")
		if i < 0 {
			break
		}
		label, text, n, ok := parseWord(s[i:])
		if !ok {
			flush()
			out.WriteString(s[:i+2])
			s = s[i+2:]
			continue
		}
		between := s[:i]
		if runLabel != "" && strings.TrimSpace(between) == "" {
			// Only white space between two words: it goes.
			if !strings.EqualFold(label, runLabel) {
				flush()
			}
		} else {
			flush()
			out.WriteString(between)
		}
		if runLabel == "" {
			runLabel = label
		}
		run = append(run, text...)
		s = s[i+n:]
	}
	flush()
	out.WriteString(s)
	return out.String()
}

// parseWord parses the encoded word at the start of s ("=?charset?B?...?="
// or Q) and returns its charset label, its decoded bytes and its length.
func parseWord(s string) (label string, text []byte, n int, ok bool) {
	rest := s[2:]
	q1 := strings.IndexByte(rest, '?')
	if q1 <= 0 || q1 > 64 || len(rest) < q1+3 || rest[q1+2] != '?' {
		return "", nil, 0, false
	}
	label, enc := rest[:q1], rest[q1+1]
	if strings.ContainsAny(label, " \t\r\n\"") {
		return "", nil, 0, false
	}
	body := rest[q1+3:]
	end := strings.Index(body, "?=")
	if end < 0 {
		return "", nil, 0, false
	}
	payload := body[:end]
	switch enc {
	case 'B', 'b':
		p := strings.TrimRight(strings.Join(strings.Fields(payload), ""), "=")
		d, err := base64.RawStdEncoding.DecodeString(p)
		if err != nil {
			// Keep what decodes: whole groups of four before the damage.
			d, _ = base64.RawStdEncoding.DecodeString(p[:len(p)/4*4])
		}
		text = d
	case 'Q', 'q':
		text = make([]byte, 0, len(payload))
		for i := 0; i < len(payload); i++ {
			switch c := payload[i]; {
			case c == '_':
				text = append(text, ' ')
			case c == '=' && i+2 < len(payload) && isHex(payload[i+1]) && isHex(payload[i+2]):
				text = append(text, unhex(payload[i+1])<<4|unhex(payload[i+2]))
				i += 2
			default:
				text = append(text, c)
			}
		}
	default:
		return "", nil, 0, false
	}
	return label, text, 2 + q1 + 3 + end + 2, true
}

// wordCharsets returns the charset labels of the encoded words of v.
func wordCharsets(v string) []string {
	var labels []string
	for {
		i := strings.Index(v, "=?")
		if i < 0 {
			return labels
		}
		label, _, n, ok := parseWord(v[i:])
		if !ok {
			v = v[i+2:]
			continue
		}
		labels = append(labels, label)
		v = v[i+n:]
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// metaCharsetRe finds the charset an HTML document declares in a meta
// element.
var metaCharsetRe = regexp.MustCompile(`(?i)<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_.:-]+)`)

// metaCharset returns the charset declared by the meta elements at the
// start of an HTML document, or "".
func metaCharset(b []byte) string {
	if len(b) > 4096 {
		b = b[:4096]
	}
	if m := metaCharsetRe.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// maxContinuations bounds the RFC 2231 continuations of one parameter.
const maxContinuations = 100

// param returns the named parameter of a Content-Type or
// Content-Disposition value, decoded: RFC 2231 extended values and
// continuations in their charsets, RFC 2047 encoded words (which clients
// write there against the RFC), raw 8-bit bytes.
func (c *charsets) param(value, name, what string, w *warnings) string {
	params := splitParams(value)
	if v, ok := params[name+"*"]; ok {
		label, text := extValue(v)
		return c.decode(text, label, false, what, w)
	}
	_, plain0 := params[name+"*0"]
	_, ext0 := params[name+"*0*"]
	if plain0 || ext0 {
		var buf []byte
		label, encoded := "", false
		for n := range maxContinuations {
			key := name + "*" + strconv.Itoa(n)
			if v, ok := params[key+"*"]; ok {
				if n == 0 {
					var text []byte
					label, text = extValue(v)
					buf = append(buf, text...)
				} else {
					buf = append(buf, percentDecode(v)...)
				}
				encoded = true
			} else if v, ok := params[key]; ok {
				buf = append(buf, v...)
			} else {
				break
			}
		}
		if encoded {
			return c.decode(buf, label, false, what, w)
		}
		return c.header(string(buf), what, w)
	}
	if v, ok := params[name]; ok {
		return c.header(v, what, w)
	}
	return ""
}

// extValue splits an RFC 2231 extended value, charset'language'%xx, into
// its charset label and its bytes.
func extValue(v string) (string, []byte) {
	parts := strings.SplitN(v, "'", 3)
	if len(parts) != 3 {
		return "", percentDecode(v)
	}
	return parts[0], percentDecode(parts[2])
}

func percentDecode(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return b
}

// splitParams returns the parameters of a header value after its first
// ';', names lowercased, values unquoted, the first of a repeated name.
// It takes what clients write: unquoted values with spaces, quotes left
// open, raw 8-bit bytes.
func splitParams(v string) map[string]string {
	params := map[string]string{}
	i := strings.IndexByte(v, ';')
	if i < 0 {
		return params
	}
	s := v[i+1:]
	for s != "" {
		s = strings.TrimLeft(s, " \t;")
		eq := strings.IndexAny(s, "=;")
		if eq < 0 {
			break
		}
		if s[eq] == ';' {
			s = s[eq:]
			continue
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			j := 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			val, s = b.String(), s[min(j+1, len(s)):]
		} else {
			end := strings.IndexByte(s, ';')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimSpace(s[:end]), s[end:]
		}
		if _, dup := params[key]; !dup && key != "" {
			params[key] = val
		}
	}
	return params
}
