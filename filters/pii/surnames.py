"""Chinese surnames and the words around names, for the name finder.

The single-character table holds the common surnames (simplified, and the
traditional forms that differ) minus characters that are far more often
ordinary words than surnames in SMS text (和, 都, 来, 元, 信, 国, 平 ...), which
keeps "联系人信息" or "客户都" from looking like names.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ANCHORS_AFTER",
    "COMPOUND_SURNAMES",
    "NOT_GIVEN_NAME",
    "NOT_NAMES",
    "ROLE_WORDS",
    "SURNAMES",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


SURNAMES: Final = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章"
    "鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉"
    "骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦"
    "戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛"
    "仲虞敖巩佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥"
    # traditional forms
    "陳張劉楊黃趙吳孫馬鄭謝許韓馮鄧蕭葉蘇呂盧蔣鍾譚陸範賈韋鄒龍賀顧龔萬錢嚴湯溫齊喬龐"
    "顏莊聶魯歐關蘭閆閻鄔邊衛賴羅寧紀畢單塗駱藍遊鮑華饒陽時農繆簡車項連蘆麥婁竇黨宮費"
    "應閔欒榮叢鞏遲鄺談荊樂"
)

COMPOUND_SURNAMES: Final = _words(
    "欧阳 歐陽 司马 司馬 上官 诸葛 諸葛 东方 東方 皇甫 尉迟 尉遲 公孙 公孫 "
    "慕容 长孙 長孫 宇文 司徒 夏侯 轩辕 軒轅 令狐 端木 独孤 獨孤 南宫 南宮 "
    "西门 西門 澹台 钟离 鍾離 闻人 聞人 赫连 赫連 呼延 百里 东郭 東郭 拓跋 "
    "申屠 太史 濮阳 濮陽 公冶 左丘 万俟 萬俟"
)

# Characters that do not occur in a given name here: pronouns, particles,
# verbs and nouns of lending SMS that follow a name ("张三已还款", "王五的").
NOT_GIVEN_NAME: Final = frozenset(
    "的了在是与及或您你我他她它们请已将会要让被把给向对从于就都也还又说这那个位先生女士好客户号码"
    "电话手机卡账款贷借元月日年时分逾期应欠等吗呢吧啊为并但而如若因所此其各每某本该再去来到过着"
    "叫称于和同跟找打发短信通知告诉转联系"
)

# Two-character words that begin with a surname character but are not names.
NOT_NAMES: Final = _words(
    "信息 关系 方式 方法 方面 方便 姓名 同意 表示 已经 于是 于今 于本 于次 将会 将于 "
    "也会 都会 还款 时间 时候 金额 余额 余款 本人 本金 明天 明日 明确 万元 张贴 陈述 "
    "黄金 高利 高额 高息 罗列 何时 何处 周末 周一 周二 周三 周四 周五 周六 周日 周内 "
    "周期 孙子 单位 费用 程序 车主 车辆 房子 房产 包括 成功 任何 常用 文件 管理 全部 "
    "全额 安全 安排 连续 曾经 严重 严格 司法 公司 宁可 应该 应当 华为 江湖 石头 苏醒 "
    "雷同 龙头 宋体 魏晋 温馨 乐意 师傅 商量 官方 封号 谈谈 谈话 惠民 关注 关于 关联 "
    "马上 高铁 高速 齐全 向您 向你 康复 施工"
)

# Words before a name: address forms, relations and roles (third parties),
# and the few verbs that take a person ("转告王五").
ROLE_WORDS: Final = (
    "尊敬的", "亲爱的", "敬爱的", "紧急联系人", "联系人", "聯繫人", "聯絡人", "担保人",
    "擔保人", "保证人", "保證人", "共同借款人", "借款人", "配偶", "妻子", "老婆", "丈夫", "老公",
    "父亲", "母亲", "父親", "母親", "爸爸", "妈妈", "媽媽", "儿子", "女儿", "兒子", "女兒", "哥哥",
    "姐姐", "弟弟", "妹妹", "朋友", "同事", "领导", "領導", "亲属", "亲戚", "家属", "家人", "室友",
    "户主", "客户", "用户", "会员", "持卡人", "转告", "告诉", "告訴",
)  # fmt: skip

# Words after a name: honorifics and greetings ("张三先生", "李四您好").
ANCHORS_AFTER: Final = ("先生", "女士", "小姐", "您好", "你好")
