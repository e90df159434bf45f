"""Portuguese words and shapes the generator draws from: what True Label's data looks like."""

from __future__ import annotations

FIRST_NAMES = ("Ana", "Bruno", "Carla", "Diego", "Eduarda", "Felipe", "Gabriela", "Henrique",
               "Isabela", "João", "Larissa", "Marcos", "Natália", "Otávio", "Paula", "Rafael",
               "Sofia", "Thiago", "Vitória", "Wesley", "Yasmin", "Lucas", "Mariana", "Pedro")
LAST_NAMES = ("Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves",
              "Pereira", "Lima", "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Araújo")
EMAIL_DOMAINS = ("gmail.com", "hotmail.com", "outlook.com", "uol.com.br", "empresa.com.br")
BRAND_WORDS = ("Nutri", "Vida", "Bem", "Natural", "Sabor", "Verde", "Puro", "Forte", "Leve",
               "Campo", "Terra", "Sol", "Mar", "Flor", "Raiz")
BRAND_SUFFIXES = ("Alimentos", "Foods", "Nutrição", "Orgânicos", "Bebidas", "Cosméticos", "Ltda")
CATEGORIES = ("Alimentos", "Suplementos", "Bebidas", "Cosméticos", "Higiene", "Laticínios",
              "Panificação", "Snacks")
PRODUCT_NOUNS = ("Iogurte Grego", "Barra de Proteína", "Granola", "Suco de Laranja", "Whey Protein",
                 "Pão Integral", "Biscoito de Arroz", "Creme Hidratante", "Shampoo", "Chá Verde",
                 "Leite de Amêndoas", "Queijo Minas", "Pasta de Amendoim", "Kombucha",
                 "Castanha do Pará", "Café Especial", "Azeite Extra Virgem", "Mel Orgânico")
PRODUCT_ADJECTIVES = ("Natural", "Zero Açúcar", "Sem Lactose", "Tradicional", "Light",
                      "Orgânico", "Proteico", "Integral", "Vegano", "Premium")
CLAIMS = ("Sem Glúten", "Sem Lactose", "Vegano", "Orgânico", "Fonte de Proteína", "Zero Açúcar",
          "Integral", "Rico em Fibras", "Sem Conservantes", "Baixo Sódio", "Fonte de Energia",
          "Não Transgênico")
DESCRIPTIONS = ("rico em proteínas e ideal para o café da manhã",
                "feito com ingredientes selecionados da agricultura familiar",
                "sem adição de açúcares e com sabor natural",
                "fonte de fibras que ajuda na saciedade",
                "desenvolvido para quem busca uma alimentação equilibrada",
                "livre de glúten, indicado para celíacos")
LAB_NAMES = ("Laboratório Exemplo", "Laboratório Qualidade Total", "Instituto de Análises",
             "Centro de Pesquisa em Alimentos", "LabSaúde Análises", "Bioanálise Brasil")
CITIES = (("São Paulo", "SP"), ("Rio de Janeiro", "RJ"), ("Belo Horizonte", "MG"),
          ("Porto Alegre", "RS"), ("Curitiba", "PR"), ("Salvador", "BA"), ("Recife", "PE"),
          ("Fortaleza", "CE"), ("Brasília", "DF"), ("Manaus", "AM"), ("Florianópolis", "SC"))
STREETS = ("Rua das Análises", "Av. da Ciência", "Rua XV de Novembro", "Av. Paulista",
           "Rua da Consolação", "Av. Brasil")
ANALYSIS_TYPES = ("Microbiológica", "Nutricional", "Alergênicos", "Metais Pesados",
                  "Resíduos de Agrotóxicos", "Físico-química")
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; moto g54) AppleWebKit/537.36 Chrome/123.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15",
    "TrueLabelApp/2.3.1 (Android 14)", "TrueLabelApp/2.3.0 (iOS 17.4)")
EVENT_TYPES = ("product_view", "qr_scan", "search", "validation_request", "report_download",
               "seal_view", "share")
SEAL_STATUSES = ("PENDING", "VERIFIED", "EXPIRED", "REVOKED")
QUEUE_STATUSES = ("PENDING", "ASSIGNED", "IN_PROGRESS", "COMPLETED", "CANCELLED")
QUEUE_ACTIONS = ("CREATED", "ASSIGNED", "STARTED", "COMPLETED", "CANCELLED", "COMMENTED")
PRIORITIES = ("LOW", "NORMAL", "HIGH", "URGENT")
PRODUCT_STATUSES = ("DRAFT", "PENDING", "VALIDATED", "REJECTED", "EXPIRED")
VALIDATION_STATUSES = ("PENDING", "APPROVED", "REJECTED", "PARTIAL")
ROLES = (("ADMIN", 2), ("BRAND", 30), ("LAB", 5), ("CONSUMER", 63))
